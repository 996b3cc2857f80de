// mantissa-quantize: quantize a float32 tensor file with any Mantissa format (docs/formats.md).
#include <iostream>

#include "apps/QuantizeTool.h"

int main(int argc, char** argv) {
  return mantissa::apps::runQuantizeTool(argc, argv, std::cout, std::cerr);
}

#include <doctest/doctest.h>

#include <set>

#include "formats/Format.h"
#include "formats/detail/Spec.h"

using namespace mantissa;
using namespace mantissa::formats;

TEST_CASE("Registry: every spelling parses and its canonical spec round-trips") {
  struct Case {
    const char* in;
    const char* canonical;
  };
  for (Case c : {Case{"fp32", "fp32"}, Case{"bf16", "bf16"}, Case{"bf16:round=nearest", "bf16"},
                 Case{"bf16:round=stochastic", "bf16:round=stochastic"}, Case{"fp16", "fp16"},
                 Case{"fp16:round=stochastic", "fp16:round=stochastic"}, Case{"e4m3", "e4m3"},
                 Case{"e4m3:sat=1", "e4m3"}, Case{"e4m3:sat=0", "e4m3:sat=0"},
                 Case{"e4m3:round=stochastic,sat=0", "e4m3:sat=0,round=stochastic"},
                 Case{"e5m2", "e5m2"}, Case{"e5m2:sat=0", "e5m2:sat=0"},
                 Case{"e5m2:round=stochastic", "e5m2:round=stochastic"},
                 Case{"ffp8:e=4,f=3,b=7,s=1", "ffp8:e=4,f=3,b=7,s=1"},
                 Case{"ffp8:s=1,b=7,e=4", "ffp8:e=4,f=3,b=7,s=1"},
                 Case{"ffp8:e=3,b=-2,s=0", "ffp8:e=3,f=5,b=-2,s=0"},
                 Case{"ffp8:e=0,f=7,b=3", "ffp8:e=0,f=7,b=3,s=1"},
                 Case{"ffp8:auto", "ffp8:auto"}}) {
    CAPTURE(c.in);
    FormatPtr f = parse(c.in);
    CHECK(f->spec() == c.canonical);
    CHECK(parse(f->spec())->spec() == f->spec());
  }
}

TEST_CASE("Registry: knownFormats lists parseable, canonical spellings") {
  auto known = knownFormats();
  std::set<std::string> names;
  for (const auto& [spec, description] : known) {
    CAPTURE(spec);
    CHECK_FALSE(description.empty());
    FormatPtr f = parse(spec);
    CHECK(f->spec() == spec);
    names.insert(spec);
  }
  for (const char* s : {"fp32", "bf16", "fp16", "e4m3", "e5m2", "flex16+5", "hbfp8", "s2fp8",
                        "ffp8:e=4,f=3,b=7,s=1", "ffp8:auto"}) {
    CHECK(names.count(s) == 1);
  }
}

TEST_CASE("Registry: bad specs give errors naming the token and listing what is allowed") {
  struct Case {
    const char* spec;
    std::vector<const char*> mentions;
  };
  for (Case c : {
           Case{"", {"empty format spec"}},
           Case{"e4m4", {"'e4m4'", "unknown format", "e4m3", "e5m2", "bf16", "hbfpN", "s2fp8"}},
           Case{"E4M3", {"'E4M3'", "e4m3"}},
           Case{"e4m3:sat=2", {"'e4m3:sat=2'", "sat=2", "[0, 1]"}},
           Case{"e4m3:sat=yes", {"sat=yes", "not an integer"}},
           Case{"e4m3:round=up", {"round=up", "nearest, stochastic"}},
           Case{"e4m3:block=4", {"'block=4'", "allowed for 'e4m3': sat, round"}},
           Case{"fp32:sat=0", {"'sat=0'", "takes no options"}},
           Case{"bf16:", {"no options after ':'"}},
           Case{"bf16:round=stochastic,", {"empty option"}},
           Case{"e4m3:sat=0,sat=1", {"'sat' given twice"}},
           Case{"e4m3:sat=", {"'sat=' has no value"}},
           Case{"e4m3:sat", {"'sat' needs a value"}},
           Case{"ffp8", {"ffp8 needs e=", "b=", "ffp8:auto"}},
           Case{"ffp8:e=4,f=4,b=7,s=1", {"s + e + f must be 8"}},
           Case{"ffp8:e=4,b=300", {"b=300", "out of range", "[-112, 127]"}},
           Case{"ffp8:e=9,b=1", {"e=9", "[0, 7]"}},
           Case{"ffp8:e=4,b=7,s=2", {"s=2", "[0, 1]"}},
           Case{"ffp8:e=4,b=7,x=1", {"'x=1'", "e, f, b, s, auto"}},
           Case{"ffp8:auto,e=4", {"'e=4'", "allowed for 'ffp8': auto"}},
           Case{"ffp8:auto=1", {"'auto' is a flag"}},
       }) {
    CAPTURE(c.spec);
    try {
      parse(c.spec);
      FAIL("no error for '" << c.spec << "'");
    } catch (const Error& e) {
      std::string msg = e.what();
      CAPTURE(msg);
      for (const char* m : c.mentions) CHECK(msg.find(m) != std::string::npos);
    }
  }
}

TEST_CASE("Registry: SpecKeys getters") {
  formats::detail::SpecKeys k("x:a=3,b=0.5,c=foo,flag");
  CHECK(k.head() == "x");
  CHECK(k.has("a"));
  CHECK(k.getInt("a", 0, 0, 10) == 3);
  CHECK_FALSE(k.has("a"));  // consumed
  CHECK(k.getInt("missing", 7, 0, 10) == 7);
  CHECK(k.getDouble("b", 1.0, 0.0, 1.0) == 0.5);
  CHECK(k.getChoice("c", "bar", {"foo", "bar"}) == "foo");
  CHECK(k.takeFlag("flag"));
  CHECK_FALSE(k.takeFlag("flag"));
  CHECK_NOTHROW(k.finish({}));
  formats::detail::SpecKeys d("x:b=1e400");
  CHECK_THROWS_WITH_AS(d.getDouble("b", 0, 0, 1), doctest::Contains("not a number"), Error);
  formats::detail::SpecKeys r("x:b=2.5");
  CHECK_THROWS_WITH_AS(r.getDouble("b", 0, 0, 1), doctest::Contains("out of range"), Error);
}

TEST_CASE("Registry: roles") {
  for (Role r : {Role::Weight, Role::Activation, Role::Error, Role::WeightGrad, Role::Master}) {
    CHECK(parseRole(roleName(r)) == r);
  }
  CHECK(roleName(Role::WeightGrad) == "weight_grad");
  CHECK_THROWS_WITH_AS(parseRole("gradient"),
                       doctest::Contains("'gradient' (allowed: weight, activation, error, "
                                         "weight_grad, master)"),
                       Error);
}

TEST_CASE("Registry: packedBytes counts codes at their real width") {
  Encoded e;
  e.codes = Tensor::zeros({10}, DType::I8);
  e.codeBits = 4;
  e.exponents = Tensor::zeros({3}, DType::I32);
  e.exponentBits = 8;
  e.scalars = {1.0, 2.0};
  CHECK(e.packedBytes() == 5 + 3 + 8);
  Encoded u;
  u.codes = Tensor::zeros({7}, DType::U16);
  CHECK(u.packedBytes() == 14);
  Encoded odd;
  odd.codes = Tensor::zeros({3}, DType::I8);
  odd.codeBits = 5;
  CHECK(odd.packedBytes() == 2);  // 15 bits round up to 2 bytes
}

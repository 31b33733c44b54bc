// Command-line reading shared by the reader examples. Each takes a snapshot PREFIX, the reader
// options --object-root DIR and --local-root DIR, and flags of its own; a bad command line prints
// the example's usage line and exits with status 2.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <shardy/reader_options.hpp>
#include <string>
#include <string_view>

namespace examples {

class CommandLine {
 public:
  // `usage` is what the usage message shows after the program name.
  CommandLine(int argc, char** argv, const char* usage) : argc_(argc), argv_(argv), usage_(usage) {}

  // Steps to the next argument; false after the last one.
  bool next() {
    if (++i_ >= argc_) return false;
    arg_ = argv_[i_];
    return true;
  }

  // The current argument.
  std::string_view arg() const { return arg_; }
  bool is_flag() const { return arg_.starts_with("--"); }

  // The value of the current flag: the argument after it (which is then skipped).
  std::string value() {
    if (i_ + 1 >= argc_) usage();
    return argv_[++i_];
  }

  // --object-root DIR (read s3://bucket/key from DIR/bucket/key, no server) and --local-root DIR
  // (where shards are cached): true when the current argument was one of them.
  bool reader_option(shardy::ReaderOptions& options) {
    if (arg_ == "--object-root")
      options.object_root = value();
    else if (arg_ == "--local-root")
      options.local_root = value();
    else
      return false;
    return true;
  }

  [[noreturn]] void usage() const {
    std::fprintf(stderr, "usage: %s %s\n", argv_[0], usage_);
    std::exit(2);
  }

 private:
  int argc_;
  char** argv_;
  const char* usage_;
  int i_ = 0;
  std::string_view arg_;
};

}  // namespace examples

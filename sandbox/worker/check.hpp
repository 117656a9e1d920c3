#pragma once
// `flowstate-worker --check FILE...`: compiles without running.
#include <string>
#include <vector>

namespace v8 {
class Isolate;
}

namespace flowstate::worker {

// Prints "FILE:LINE: message" per file that does not compile; 1 if any.
int check_files(v8::Isolate* isolate, const std::vector<std::string>& files);

}  // namespace flowstate::worker

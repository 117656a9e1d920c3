#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

// A test binary may re-execute itself as the child of a crash test (the
// process that gets killed). It defines this hook, which returns -1 when the
// process is not such a child. The child is not a test case, so it can never
// be counted as a passing test.
extern "C" int flowstate_test_child_main(int argc, char** argv) __attribute__((weak));

int main(int argc, char** argv) {
  if (flowstate_test_child_main != nullptr) {
    int rc = flowstate_test_child_main(argc, argv);
    if (rc >= 0) return rc;
  }
  doctest::Context context(argc, argv);
  return context.run();
}

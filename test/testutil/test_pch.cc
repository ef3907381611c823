// The one file of annals_test_pch, the target that owns the tests' shared
// precompiled header (CMakeLists.txt, annals_test_code).

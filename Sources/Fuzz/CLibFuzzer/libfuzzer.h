// libFuzzer's driver, for a program with its own main (SwiftPM's executables always have one).
// Only called when built with -sanitize=fuzzer, which links libFuzzer.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

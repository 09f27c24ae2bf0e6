// Guest OpenSSL's random generator seeds itself in a WASI process (run by run_rand_test.sh
// under Node's WASI). Without guest/patches/openssl/0002 RAND_bytes fails: OpenSSL finds
// getentropy through ELF weak symbols or DSO lookups (neither exists in wasm32-wasi) and then
// reads /dev/urandom, which a brig sandbox does not have.
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  // More than one getentropy call's 256 bytes, and two draws that must differ.
  unsigned char a[1000], b[1000];
  if (RAND_bytes(a, sizeof a) != 1 || RAND_bytes(b, sizeof b) != 1) {
    fprintf(stderr, "RAND_bytes failed: %s\n", ERR_error_string(ERR_get_error(), NULL));
    return 1;
  }
  if (memcmp(a, b, sizeof a) == 0) {
    fprintf(stderr, "two draws are equal\n");
    return 1;
  }
  int zeros = 0;
  for (size_t i = 0; i < sizeof a; i++) zeros += a[i] == 0;
  if (zeros > 40) {  // ~4 expected of 1000 random bytes
    fprintf(stderr, "%d zero bytes of 1000\n", zeros);
    return 1;
  }
  printf("RAND_bytes ok\n");
  return 0;
}

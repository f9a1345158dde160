/* Prints a marker and exits with status 3: for ELF inspection (built static and dynamic). */
#include <stdio.h>

int main(void) {
    puts("hello-from-test-program");
    return 3;
}

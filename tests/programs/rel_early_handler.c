/* A program linked with a library that installs a SIGUSR1 handler in its constructor
 * (tests/reliability_signals.rs). Opens a socket, raises SIGUSR1 once (waiting for the report),
 * and prints whether the library's handler ran. Prints one JSON line:
 * {"fdguard_was_first":0|1,"calls":n,"kept":fd}. */
#include "testlib.h"

int early_handler_calls(void);
int early_handler_found_other(void);

int main(void) {
  int port;
  int l = tcp_listener(&port);
  int rc = request_report(1);
  printf("{\"fdguard_was_first\":%d,\"calls\":%d,\"kept\":%d,\"report\":%d}\n",
         early_handler_found_other(), early_handler_calls(), l, rc);
  fflush(stdout);
  return 0;
}

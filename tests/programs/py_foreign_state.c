/* Issue 16, hazard: a thread whose PyGILState slot holds a thread state that ANOTHER thread
 * runs. Thread A (never runs Python) makes a thread state with PyThreadState_New — CPython
 * binds it to A's PyGILState slot and records A as its thread — and hands it to thread B, which
 * runs Python code on it, pushing and popping frames all the time. Meanwhile A creates sockets
 * from plain C. Reading "A's" frames there would read B's, which B is changing: fdguard must
 * give A's sockets native frames only, and the process must not notice.
 *
 * Built against each CPython's embedding flags (pythonX.Y-config --embed). Prints
 * {"ok":true,"kept":FD,"python":"X.Y.Z"} and leaves with _exit (the exit report sees FD). */
#include <Python.h>
#include <pthread.h>
#include <stdatomic.h>
#include "testlib.h"

static PyThreadState *handed;
static atomic_int stage; /* 1: A made the state; 2: B runs Python; 3: A is done */
static int kept = -1;
static char done_path[256];

static void *thread_b(void *arg) {
  (void)arg;
  while (atomic_load(&stage) < 1) usleep(100);
  PyEval_RestoreThread(handed);
  atomic_store(&stage, 2);
  char code[1024];
  snprintf(code, sizeof code,
           "import os, time\n"
           "def churn(n):\n"
           "    return 0 if n == 0 else churn(n - 1) + 1\n"
           "deadline = time.monotonic() + 20\n"
           "while not os.path.exists(%s%s%s) and time.monotonic() < deadline:\n"
           "    churn(100)\n",
           "'", done_path, "'");
  if (PyRun_SimpleString(code) != 0) die("python code failed");
  PyEval_SaveThread();
  return NULL;
}

static void *thread_a(void *arg) {
  PyInterpreterState *interp = arg;
  handed = PyThreadState_New(interp);
  if (!handed) die("PyThreadState_New");
  atomic_store(&stage, 1);
  while (atomic_load(&stage) < 2) usleep(100);
  for (int i = 0; i < 5000; i++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (i == 4999) kept = s;
    else close(s);
  }
  FILE *f = fopen(done_path, "w");
  if (f) fclose(f);
  atomic_store(&stage, 3);
  return NULL;
}

int main(void) {
  snprintf(done_path, sizeof done_path, "/tmp/fdguard-py-foreign-%d", (int)getpid());
  Py_Initialize();
  PyInterpreterState *interp = PyThreadState_Get()->interp;
  PyThreadState *main_state = PyEval_SaveThread();
  pthread_t a, b;
  if (pthread_create(&b, NULL, thread_b, NULL) != 0) die("pthread_create");
  if (pthread_create(&a, NULL, thread_a, interp) != 0) die("pthread_create");
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  PyEval_RestoreThread(main_state);
  unlink(done_path);
  printf("{\"ok\":true,\"kept\":%d,\"python\":\"%s\"}\n", kept, PY_VERSION);
  fflush(stdout);
  _exit(0);
}

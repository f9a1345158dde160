/* Proof that a child was started with vfork, without strace (tests/reliability_fork.rs).
 *
 * Preloaded after libfdguard.so, this library interposes execve/execv and counts the calls in
 * a plain global. A vfork child shares its parent's memory, so the parent sees the count go
 * up; a fork child only changes its own copy. rel_vfork_probe_execs() reads the count. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;
static volatile int execs;

int rel_vfork_probe_execs(void) { return execs; }

int execve(const char *path, char *const argv[], char *const envp[]) {
  execs++;
  return (int)syscall(SYS_execve, path, argv, envp);
}

int execv(const char *path, char *const argv[]) {
  execs++;
  return (int)syscall(SYS_execve, path, argv, environ);
}

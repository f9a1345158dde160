// leaker PORT COUNT PIDFILE
//
// A Go program (standard library only; never preloaded: Go makes its system calls itself, so
// LD_PRELOAD could not see them anyway). Dials COUNT connections to 127.0.0.1:PORT from
// openLeakyConnection and keeps every net.Conn in a slice without ever reading or closing it,
// so when the server hangs up they sit in CLOSE_WAIT. Publishes its pid in PIDFILE
// (atomically) once all are open. Lives at most 120 s; SIGTERM ends it.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

//go:noinline
func openLeakyConnection(port int) net.Conn {
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "leaker.go: dial:", err)
		os.Exit(90)
	}
	return conn
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: leaker PORT COUNT PIDFILE")
		os.Exit(64)
	}
	port, _ := strconv.Atoi(os.Args[1])
	count, _ := strconv.Atoi(os.Args[2])
	var held []net.Conn
	for i := 0; i < count; i++ {
		held = append(held, openLeakyConnection(port))
	}
	tmp := os.Args[3] + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		os.Exit(91)
	}
	if err := os.Rename(tmp, os.Args[3]); err != nil {
		os.Exit(91)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	select {
	case <-stop:
	case <-time.After(120 * time.Second):
	}
	fmt.Fprintln(os.Stderr, "leaker.go: held", len(held), "connections")
}

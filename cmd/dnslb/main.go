// Command dnslb is a DNS-aware UDP/TCP load balancer.
//
//	dnslb [run] -config FILE         serve (default subcommand)
//	dnslb check-config -config FILE  validate a configuration, exit 0 or 1
//	dnslb status [-admin ADDR]       print the running balancer's backends
//	dnslb drain|enable|disable NAME  change a backend's admin state at runtime
//	dnslb version                    print the version
//
// Signals while running: SIGHUP reloads the configuration (an invalid file
// is refused and the running configuration stays); SIGUSR2 restarts
// gracefully (the binary at the same path takes the listening sockets over,
// this process drains and exits; see upgrade.go); SIGTERM and SIGINT stop
// accepting queries, let in-flight ones finish (bounded) and exit 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/config"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "drain", "enable", "disable":
		return cmdSetState(cmd, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "dnslb", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "dnslb: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  dnslb [run] -config FILE          serve DNS on the listen addresses (SIGHUP reloads, SIGUSR2 restarts
                                    gracefully into the binary at the same path, SIGTERM stops)
  dnslb check-config -config FILE   validate FILE; prints every problem, exits 0 if valid, 1 if not
  dnslb status [-admin ADDR]        show backends of a running dnslb (default admin 127.0.0.1:9053)
  dnslb drain [-admin ADDR] NAME    stop sending new queries to backend NAME (until enable or the next reload)
  dnslb enable [-admin ADDR] NAME   make backend NAME active again
  dnslb disable [-admin ADDR] NAME  take backend NAME out of rotation at once
                                    (-token or DNSLB_ADMIN_TOKEN when admin.token is set)
  dnslb version                     print the version
`)
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d listen addresses, %d backends)\n", *path, len(cfg.Listen), len(cfg.Backends))
	return 0
}

// adminFlags registers the flags that reach a running dnslb's admin API.
func adminFlags(fs *flag.FlagSet) (addr, token *string) {
	addr = fs.String("admin", "127.0.0.1:9053", "admin address of the running dnslb (admin.listen)")
	token = fs.String("token", os.Getenv("DNSLB_ADMIN_TOKEN"), "admin.token of the running dnslb (default $DNSLB_ADMIN_TOKEN)")
	return addr, token
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr, token := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON document")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := admin.Fetch(ctx, *addr, *token)
	if err != nil {
		fmt.Fprintln(stderr, "dnslb status:", err)
		return 1
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	if err := admin.WriteTable(stdout, st); err != nil {
		fmt.Fprintln(stderr, "dnslb status:", err)
		return 1
	}
	return 0
}

// cmdSetState drains, enables or disables one backend of a running dnslb.
func cmdSetState(action string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr, token := adminFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "dnslb %s: give one backend name (as in backends[].name)\n", action)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	state, err := admin.SetState(ctx, *addr, *token, fs.Arg(0), action)
	if err != nil {
		fmt.Fprintf(stderr, "dnslb %s: %v\n", action, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s (until the next reload or restart, which apply the file's state)\n", fs.Arg(0), state)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	d, err := newDaemon(*path, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := d.serve(); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

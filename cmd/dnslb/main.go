// Command dnslb is a DNS-aware UDP/TCP load balancer.
//
//	dnslb [run] [-config FILE]         serve (the default command)
//	dnslb check-config [-config FILE]  validate a configuration, exit 0 or 1
//	dnslb status [-wide] [-json]       print the running balancer's backends
//	dnslb drain|enable|disable NAME    change a backend's admin state at runtime
//	dnslb version                      print the version, commit and Go version
//	dnslb help [COMMAND]               print the usage, or COMMAND's flags
//
// -config defaults to /etc/dnslb/config.yaml (the path packaging/dnslb.service
// uses), or ./config.yaml when that is absent. status, drain, enable and
// disable reach the admin API of the running dnslb at -admin (default
// 127.0.0.1:9053) with -token (default $DNSLB_ADMIN_TOKEN). status fits in
// 100 columns; -wide prints every column.
//
// -h, -help or --help prints the usage to standard output, on its own or
// after a command (that command's flags); --version is the version command.
// Exit status: 0 success, 1 failure, 2 usage error: an unknown command or
// flag or a stray argument is named on one line of standard error, followed
// by the usage.
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
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/config"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// The configuration file when -config is not given: the packaged path,
// else the working directory's.
const (
	systemConfig = "/etc/dnslb/config.yaml"
	localConfig  = "./config.yaml"
)

// configStat is os.Stat; tests replace it to pretend about /etc.
var configStat = os.Stat

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command line: args without the program name. It returns the
// exit status: 0 success, 1 failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(stdout)
			return 0
		case "-version", "--version":
			cmd, args = "version", args[1:]
		default:
			if args[0] == "" || args[0][0] != '-' {
				cmd, args = args[0], args[1:]
			}
		}
	}
	switch cmd {
	case "run":
		return cmdRun(args, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "release":
		return cmdRelease(args, stdout, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "drain", "enable", "disable":
		return cmdSetState(cmd, args, stdout, stderr)
	case "version":
		return cmdVersion(args, stdout, stderr)
	case "help":
		return cmdHelp(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "dnslb: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

// usage is the top-level help: `dnslb -h`, `dnslb help`.
func usage(w io.Writer) {
	fmt.Fprint(w, `usage: dnslb [COMMAND] [FLAGS] [ARGS]

commands:
  run [-config FILE]           serve DNS (the default command); SIGHUP reloads,
                               SIGUSR2 restarts gracefully, SIGTERM stops
  check-config [-config FILE]  validate the configuration; prints every problem,
                               exits 0 if valid, 1 if not
  release [-config FILE]       remove the configuration's VRRP VIPs from their
                               interface (after a crash; systemd ExecStopPost)
  status [-wide] [-json]       show the backends of a running dnslb
                               (100 columns; -wide: every column)
  drain NAME                   stop sending new queries to backend NAME
                               (until enable, the next reload or a restart)
  enable NAME                  make backend NAME active again
  disable NAME                 take backend NAME out of rotation at once
  version                      print the version, commit and Go version
  help [COMMAND]               print this help, or COMMAND's flags

common flags:
  -config FILE  default /etc/dnslb/config.yaml, or ./config.yaml when that is absent
  -admin ADDR   admin.listen of the running dnslb (default 127.0.0.1:9053)
  -token TOKEN  its admin.token, when set (default $DNSLB_ADMIN_TOKEN)

dnslb COMMAND -h lists COMMAND's flags; dnslb --version prints the version.
Exit status: 0 success, 1 failure, 2 usage error.
`)
}

// commands holds each command's synopsis and description for
// `dnslb COMMAND -h`; the keys are the FlagSet names.
var commands = map[string]struct{ synopsis, text string }{
	"run": {"dnslb [run] [-config FILE]",
		"Serve DNS on the configuration's listen addresses. SIGHUP reloads the file\n" +
			"(an invalid one is refused), SIGUSR2 restarts gracefully into the binary at\n" +
			"the same path, SIGTERM and SIGINT drain in-flight queries and exit."},
	"check-config": {"dnslb check-config [-config FILE]",
		"Validate the configuration file: print every problem, exit 0 if valid, 1 if not."},
	"release": {"dnslb release [-config FILE]",
		"Remove the VRRP VIPs of the configuration from their interface, so that a\n" +
			"node whose dnslb died (even by SIGKILL) stops answering for them at once.\n" +
			"packaging/dnslb.service runs it as ExecStopPost. Without vrrp it does\n" +
			"nothing; a VIP that is not there is fine."},
	"status": {"dnslb status [-admin ADDR] [-token TOKEN] [-wide] [-json]",
		"Show the backends of a running dnslb: state, health, load and the reason of\n" +
			"the last health change, in at most 100 columns. -wide prints every column\n" +
			"unshortened, -json the admin API's /status document."},
	"drain": {"dnslb drain [-admin ADDR] [-token TOKEN] NAME",
		"Stop sending new queries to backend NAME (as in backends[].name) until\n" +
			"enable, the next reload or a restart."},
	"enable": {"dnslb enable [-admin ADDR] [-token TOKEN] NAME",
		"Make backend NAME active again (until the next reload or a restart)."},
	"disable": {"dnslb disable [-admin ADDR] [-token TOKEN] NAME",
		"Take backend NAME out of rotation at once (until enable, the next reload or\n" +
			"a restart)."},
	"version": {"dnslb version", "Print the version, the VCS commit it was built from and the Go version."},
	"help":    {"dnslb help [COMMAND]", "Print the usage, or COMMAND's flags."},
}

// flagSet returns an empty FlagSet for command name that prints nothing
// itself: parseFlags reports help and errors.
func flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. ok is false when the command is done,
// with exit status code: 0 after -h, -help or --help (the command's usage
// went to stdout), 2 after a bad flag (one line naming it, then the
// command's usage, went to stderr).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		commandUsage(stdout, fs)
		return 0, false
	}
	msg := err.Error()
	if name, found := strings.CutPrefix(msg, "flag provided but not defined: "); found {
		msg = "unknown flag " + name
	}
	return usageError(stderr, fs, msg), false
}

// noArgs reports a positional argument, which fs's command does not take,
// as a usage error; ok is true when there is none.
func noArgs(fs *flag.FlagSet, stderr io.Writer) (code int, ok bool) {
	if fs.NArg() == 0 {
		return 0, true
	}
	return usageError(stderr, fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0))), false
}

// usageError prints msg as "dnslb COMMAND: msg", then the command's usage,
// to w, and returns 2, the exit status of a usage error.
func usageError(w io.Writer, fs *flag.FlagSet, msg string) int {
	fmt.Fprintf(w, "dnslb %s: %s\n", fs.Name(), msg)
	commandUsage(w, fs)
	return 2
}

// commandUsage prints the synopsis, description and flags of fs's command.
func commandUsage(w io.Writer, fs *flag.FlagSet) {
	c := commands[fs.Name()]
	fmt.Fprintf(w, "usage: %s\n\n%s\n", c.synopsis, c.text)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// configFlag registers -config; its empty default stands for
// defaultConfigPath.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "configuration `FILE` (default "+systemConfig+", or "+localConfig+" when that is absent)")
}

// configPath is the -config value, or defaultConfigPath's choice when
// -config was not given.
func configPath(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	return defaultConfigPath(configStat)
}

// defaultConfigPath is the configuration file when -config is not given:
// /etc/dnslb/config.yaml (packaging/dnslb.service's), or ./config.yaml when
// that does not exist. stat is os.Stat outside tests. A file that exists
// but cannot be read is chosen all the same, so that loading it says why.
// When neither exists the error names both paths.
func defaultConfigPath(stat func(string) (os.FileInfo, error)) (string, error) {
	for _, p := range []string{systemConfig, localConfig} {
		if _, err := stat(p); err == nil || !errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no configuration file: neither %s nor %s exists (give -config FILE)", systemConfig, localConfig)
}

func cmdHelp(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("help")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	switch fs.NArg() {
	case 0:
		usage(stdout)
		return 0
	case 1:
		name := fs.Arg(0)
		if name == "help" {
			usage(stdout)
			return 0
		}
		if _, known := commands[name]; known {
			return run([]string{name, "-h"}, stdout, stderr)
		}
		return usageError(stderr, fs, fmt.Sprintf("unknown command %q", name))
	}
	return usageError(stderr, fs, fmt.Sprintf("unexpected argument %q", fs.Arg(1)))
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("version")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if code, ok := noArgs(fs, stderr); !ok {
		return code
	}
	info, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(version, info))
	return 0
}

// versionLine is what `dnslb version` prints, e.g. "dnslb v1.2.3 (commit
// 0123abcd4567, go1.26.8)": the -ldflags version, the VCS commit the
// binary was built from ("-dirty" when the tree was modified, "unknown"
// without VCS information) and the Go version, from info (nil when the
// binary has no build information). A "dev" build without VCS information
// (go install module@version) shows the module version instead.
func versionLine(version string, info *debug.BuildInfo) string {
	commit, dirty, goVersion := "", false, runtime.Version()
	if info != nil {
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if v := info.Main.Version; version == "dev" && commit == "" && v != "" && v != "(devel)" {
			version = v
		}
	}
	switch {
	case commit == "":
		commit = "unknown"
	case dirty:
		commit = commit[:min(len(commit), 12)] + "-dirty"
	default:
		commit = commit[:min(len(commit), 12)]
	}
	return fmt.Sprintf("dnslb %s (commit %s, %s)", version, commit, goVersion)
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("check-config")
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if code, ok := noArgs(fs, stderr); !ok {
		return code
	}
	p, err := configPath(*path)
	if err != nil {
		fmt.Fprintln(stderr, "dnslb check-config:", err)
		return 1
	}
	cfg, err := config.Load(p)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d listen addresses, %d backends)\n", p, len(cfg.Listen), len(cfg.Backends))
	return 0
}

// cmdRelease removes the configuration's VRRP VIPs (dnslb release).
func cmdRelease(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("release")
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if code, ok := noArgs(fs, stderr); !ok {
		return code
	}
	p, err := configPath(*path)
	if err != nil {
		fmt.Fprintln(stderr, "dnslb release:", err)
		return 1
	}
	cfg, err := config.Load(p)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if !cfg.VRRP.Enabled {
		fmt.Fprintf(stdout, "%s: vrrp is not enabled, nothing to release\n", p)
		return 0
	}
	specs := vrrpSpecs(cfg)
	if err := releaseVIPs(specs); err != nil {
		fmt.Fprintf(stderr, "dnslb release: %v\n", err)
		return 1
	}
	for _, sp := range specs {
		fmt.Fprintf(stdout, "released %s from %s (instance %s)\n", prefixList(sp.Options.VIPs), sp.Interface, sp.Name)
	}
	return 0
}

// adminFlags registers the flags that reach a running dnslb's admin API.
// The token's default is read after parsing (adminToken), so that help
// does not print it.
func adminFlags(fs *flag.FlagSet) (addr, token *string) {
	addr = fs.String("admin", "127.0.0.1:9053", "`ADDR` of the running dnslb's admin API (its admin.listen)")
	token = fs.String("token", "", "the running dnslb's admin.token `TOKEN`, when it has one (default $DNSLB_ADMIN_TOKEN)")
	return addr, token
}

// adminToken is the -token value, else $DNSLB_ADMIN_TOKEN.
func adminToken(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv("DNSLB_ADMIN_TOKEN")
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("status")
	addr, token := adminFlags(fs)
	wide := fs.Bool("wide", false, "print every column, nothing shortened (wider than 100 columns)")
	asJSON := fs.Bool("json", false, "print the raw JSON document")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if code, ok := noArgs(fs, stderr); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := admin.Fetch(ctx, *addr, adminToken(*token))
	if err != nil {
		fmt.Fprintln(stderr, "dnslb status:", err)
		return 1
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	if err := admin.WriteTable(stdout, st, admin.TableOptions{Wide: *wide}); err != nil {
		fmt.Fprintln(stderr, "dnslb status:", err)
		return 1
	}
	return 0
}

// cmdSetState drains, enables or disables one backend of a running dnslb.
func cmdSetState(action string, args []string, stdout, stderr io.Writer) int {
	fs := flagSet(action)
	addr, token := adminFlags(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(stderr, fs, "give one backend name (as in backends[].name)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	state, err := admin.SetState(ctx, *addr, adminToken(*token), fs.Arg(0), action)
	if err != nil {
		fmt.Fprintf(stderr, "dnslb %s: %v\n", action, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s (until the next reload or restart, which apply the file's state)\n", fs.Arg(0), state)
	return 0
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("run")
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if code, ok := noArgs(fs, stderr); !ok {
		return code
	}
	p, err := configPath(*path)
	if err != nil {
		fmt.Fprintln(stderr, "dnslb run:", err)
		return 1
	}
	d, err := newDaemon(p, stderr)
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

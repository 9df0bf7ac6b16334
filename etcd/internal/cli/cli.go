// Package cli is the credslots-etcd command: its flags, its commands and
// their exit codes. It is a package so that the module's tests can run the
// command in-process or re-exec themselves as it.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/gptme/credslots"
	"github.com/gptme/credslots/etcd"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitTempFail = 75 // EX_TEMPFAIL: no sub free within --wait
)

// TTLEnv overrides the lease session's TTL (a Go duration); it exists for
// tests and for operators who want a TTL other than 15 s.
const TTLEnv = "CREDSLOTS_ETCD_TTL"

const usage = `usage: credslots-etcd [global flags] COMMAND [ARGS]

Global flags:
  --endpoints URL,...   etcd endpoints (default 127.0.0.1:2379)
  --prefix P            key prefix of the pool (default /credslots/)
  --key-file F          the 32-byte AES-256 key the logins are sealed with (required)
  --tool NAME           claude, codex or gemini (default claude)
  --json                print JSON
  --cacert F            CA bundle to verify the etcd servers
  --cert F, --key F     client certificate and key for etcd

Commands:
  import SUB FILE       store FILE's login as SUB (refuses a login another sub holds)
  export SUB FILE       write SUB's stored login to FILE (only one not leased)
  run [--seat DIR] [--sub SUB] [--wait DURATION] [--seat-env NAME] -- CMD [ARGS...]
                        lease a sub for a seat, run CMD with it, write its refreshes back
  leases                list the leases
  status                each sub's login (expiry, freshness), lease and backups
  backups [SUB]         the backups the fence kept (of SUB), newest first
  export-backup NAME FILE
                        write the backup NAME (as backups lists it) to FILE
`

type globals struct {
	endpoints, prefix, keyFile, tool string
	json                             bool
	cacert, cert, key                string
}

// Main runs the command with args (without the program name) and returns
// its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if os.Getenv(guardEnv) != "" {
		return guardMain()
	}
	var g globals
	fs := flag.NewFlagSet("credslots-etcd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.endpoints, "endpoints", "127.0.0.1:2379", "")
	fs.StringVar(&g.prefix, "prefix", etcd.DefaultPrefix, "")
	fs.StringVar(&g.keyFile, "key-file", "", "")
	fs.StringVar(&g.tool, "tool", "claude", "")
	fs.BoolVar(&g.json, "json", false, "")
	fs.StringVar(&g.cacert, "cacert", "", "")
	fs.StringVar(&g.cert, "cert", "", "")
	fs.StringVar(&g.key, "key", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return usageError(stderr, err.Error())
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageError(stderr, "no command")
	}
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "import", "export":
		if len(cargs) != 2 {
			return usageError(stderr, cmd+" takes SUB FILE")
		}
	case "export-backup":
		if len(cargs) != 2 {
			return usageError(stderr, cmd+" takes NAME FILE")
		}
	case "backups":
		if len(cargs) > 1 {
			return usageError(stderr, cmd+" takes at most a SUB")
		}
	case "leases", "status":
		if len(cargs) != 0 {
			return usageError(stderr, cmd+" takes no arguments")
		}
	case "run":
	default:
		return usageError(stderr, "unknown command "+cmd)
	}
	var ropts *runOptions
	if cmd == "run" {
		var msg string
		if ropts, msg = parseRun(cargs); msg != "" {
			return usageError(stderr, msg)
		}
	}
	format, ok := formatNamed(g.tool)
	if !ok {
		return usageError(stderr, "unknown --tool "+g.tool+" (claude, codex or gemini)")
	}
	if g.keyFile == "" {
		return usageError(stderr, "--key-file is required")
	}
	key, err := etcd.ReadKeyFile(g.keyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	cli, err := newClient(g)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	defer cli.Close()
	opts := []etcd.Option{etcd.WithKey(key), etcd.WithPrefix(g.prefix), etcd.WithFormat(format),
		etcd.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	if v := os.Getenv(TTLEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return usageError(stderr, TTLEnv+" must be a duration of at least 1s")
		}
		opts = append(opts, etcd.WithTTL(d))
	}
	pool, err := etcd.Open(cli, opts...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	ctx := context.Background()
	switch cmd {
	case "import":
		return doImport(ctx, pool, cargs[0], cargs[1], stdout, stderr, g.json)
	case "export":
		return doExport(ctx, pool, cargs[0], cargs[1], stdout, stderr, g.json)
	case "export-backup":
		return doExportBackup(ctx, pool, cargs[0], cargs[1], stdout, stderr, g.json)
	case "backups":
		sub := ""
		if len(cargs) == 1 {
			sub = cargs[0]
		}
		return doBackups(ctx, pool, sub, stdout, stderr, g.json)
	case "leases":
		return doLeases(ctx, pool, stdout, stderr, g.json)
	case "status":
		return doStatus(ctx, pool, stdout, stderr, g.json)
	default:
		return doRun(ctx, pool, format, ropts, stderr)
	}
}

func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "credslots-etcd: %s\n\n%s", msg, usage)
	return exitUsage
}

func formatNamed(name string) (credslots.Format, bool) {
	for _, f := range credslots.Formats() {
		if f.Name() == name {
			return f, true
		}
	}
	return nil, false
}

func newClient(g globals) (*clientv3.Client, error) {
	var eps []string
	for _, e := range strings.Split(g.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, errors.New("credslots-etcd: no --endpoints")
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second}
	if g.cacert != "" || g.cert != "" || g.key != "" {
		if (g.cert == "") != (g.key == "") {
			return nil, errors.New("credslots-etcd: --cert and --key go together")
		}
		info := transport.TLSInfo{CertFile: g.cert, KeyFile: g.key, TrustedCAFile: g.cacert}
		tlsCfg, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("credslots-etcd: TLS: %w", err)
		}
		cfg.TLS = tlsCfg
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("credslots-etcd: connect: %w", err)
	}
	return cli, nil
}

func failed(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, err)
	return exitFailure
}

func doImport(ctx context.Context, pool *etcd.Pool, sub, file string, stdout, stderr io.Writer, asJSON bool) int {
	data, err := credslots.ReadCredentialFile(file)
	if err != nil {
		return failed(stderr, err)
	}
	if err := pool.Import(ctx, sub, data); err != nil {
		return failed(stderr, err)
	}
	return report(stdout, asJSON, map[string]string{"sub": sub, "imported": file}, "imported "+sub)
}

// notOverwritten refuses an export into a file that exists: it may be the
// only copy of a login (a seat's, a slot's).
func notOverwritten(file string) error {
	if _, err := os.Lstat(file); err == nil {
		return fmt.Errorf("credslots-etcd: %s exists: not overwritten (it may hold a login; remove it or name a new file)", file)
	}
	return nil
}

func doExport(ctx context.Context, pool *etcd.Pool, sub, file string, stdout, stderr io.Writer, asJSON bool) int {
	if err := notOverwritten(file); err != nil {
		return failed(stderr, err)
	}
	data, err := pool.Export(ctx, sub)
	if err != nil {
		return failed(stderr, err)
	}
	if err := credslots.WriteCredentialFile(file, data); err != nil {
		return failed(stderr, err)
	}
	return report(stdout, asJSON, map[string]string{"sub": sub, "exported": file}, "exported "+sub+" to "+file)
}

func doExportBackup(ctx context.Context, pool *etcd.Pool, name, file string, stdout, stderr io.Writer, asJSON bool) int {
	if err := notOverwritten(file); err != nil {
		return failed(stderr, err)
	}
	data, err := pool.ExportBackup(ctx, name)
	if err != nil {
		return failed(stderr, err)
	}
	if err := credslots.WriteCredentialFile(file, data); err != nil {
		return failed(stderr, err)
	}
	return report(stdout, asJSON, map[string]string{"backup": name, "exported": file}, "exported backup "+name+" to "+file)
}

func doBackups(ctx context.Context, pool *etcd.Pool, sub string, stdout, stderr io.Writer, asJSON bool) int {
	bs, err := pool.Backups(ctx, sub)
	if err != nil {
		return failed(stderr, err)
	}
	if asJSON {
		return report(stdout, true, bs, "")
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSUB\tKEPT\tFRESH\tREASON")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", b.Name, b.Sub, b.Time.Format(time.RFC3339), b.Fresh, b.Reason)
	}
	_ = tw.Flush()
	return exitOK
}

func report(stdout io.Writer, asJSON bool, v any, text string) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	} else {
		fmt.Fprintln(stdout, text)
	}
	return exitOK
}

func doLeases(ctx context.Context, pool *etcd.Pool, stdout, stderr io.Writer, asJSON bool) int {
	ls, err := pool.Leases(ctx)
	if err != nil {
		return failed(stderr, err)
	}
	if asJSON {
		return report(stdout, true, ls, "")
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUB\tHOST\tPID\tSEAT\tSINCE")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", l.Sub, l.Host, l.PID, l.Seat, l.Since.Format(time.RFC3339))
	}
	_ = tw.Flush()
	return exitOK
}

func doStatus(ctx context.Context, pool *etcd.Pool, stdout, stderr io.Writer, asJSON bool) int {
	st, err := pool.Status(ctx)
	if err != nil {
		return failed(stderr, err)
	}
	if asJSON {
		return report(stdout, true, st, "")
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUB\tFRESH\tLEASE\tBACKUPS\tREASON")
	for _, s := range st {
		lease := "-"
		if s.Lease != nil {
			lease = fmt.Sprintf("%s pid %d %s", s.Lease.Host, s.Lease.PID, s.Lease.Seat)
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%d\t%s\n", s.Sub, s.Fresh, lease, s.Backups, s.Reason)
	}
	_ = tw.Flush()
	return exitOK
}

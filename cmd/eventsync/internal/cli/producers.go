package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/conf"
)

const producersUsage = `eventsync producers: manage the producers EventSync accepts events from,
through the admin API of a running EventSync (ingest or all-in-one).

Usage:
  eventsync producers create --name NAME [--tags 'BILLING.>,INVOICE.*'] [--rate N --burst N] [--owns BILLING]
  eventsync producers list
  eventsync producers get ID
  eventsync producers update ID [--name NAME] [--tags …] [--rate N] [--burst N] [--owns …]
  eventsync producers disable ID
  eventsync producers enable ID
  eventsync producers delete ID
  eventsync producers rotate ID --credential password|api_key|jwt_secret
  eventsync producers nats-config [--direct]

Every command takes --server [$EVENTSYNC_SERVER] (default http://127.0.0.1:8080),
--admin-token [$EVENTSYNC_ADMIN_TOKEN] and --json (print the API's JSON).
Credentials are printed once, by create and rotate: store them then.
Run "eventsync producers <command> -help" for the flags of a command.
`

// adminFlags are the flags every producers command takes.
type adminFlags struct {
	server string
	token  string
	json   bool
}

func (a *adminFlags) flags(fs *conf.Set) {
	fs.String(&a.server, "server", "EVENTSYNC_SERVER", "http://127.0.0.1:8080", "base URL of the EventSync HTTP API")
	fs.String(&a.token, "admin-token", "EVENTSYNC_ADMIN_TOKEN", "", "admin token of the EventSync server (its ADMIN_TOKEN)")
	fs.Bool(&a.json, "json", "", false, "print the API's JSON instead of text")
}

// client returns an EventSync client carrying the admin token.
func (a *adminFlags) client() (*client.Client, error) {
	if a.token == "" {
		return nil, errors.New("no admin token: set --admin-token or $EVENTSYNC_ADMIN_TOKEN")
	}
	return client.New(a.server, client.WithAdminToken(a.token), client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
}

// apiError prints a problem answered by the API as the status, its title
// and detail, then one line per field at fault.
type apiError struct {
	e    *client.Error
	hint string // replaces the detail of an answer that is no problem
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.e.Status, e.e.Title)
	if d := cmp.Or(e.hint, e.e.Detail); d != "" {
		b.WriteString(": " + d)
	}
	for _, fe := range e.e.Errors {
		fmt.Fprintf(&b, "\n  %s %s", fe.Pointer, fe.Detail)
	}
	return b.String()
}

func (e *apiError) Unwrap() error { return e.e }

// explain turns an error answer of the API into an *apiError; other errors
// pass unchanged.
func (a *adminFlags) explain(err error) error {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return err
	}
	ae := &apiError{e: ce}
	if ce.Status == http.StatusNotFound && ce.Type == "" { // no problem+json: something else answered
		ae.hint = "no admin API at " + a.server + " (is it an EventSync server?)"
	}
	return ae
}

func runProducers(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, producersUsage)
		return errors.New("no producers command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, producersUsage)
		return nil
	}
	var a adminFlags
	fs := conf.New("eventsync producers "+cmd, getenv, stdout)
	a.flags(fs)
	var (
		spec       specFlags
		credential string
		direct     bool
	)
	nargs := 1 // positional arguments: the producer id
	switch cmd {
	case "create", "update":
		spec.flags(fs)
		if cmd == "create" {
			nargs = 0
		}
	case "rotate":
		fs.String(&credential, "credential", "", "", "what to rotate: password, api_key or jwt_secret")
	case "nats-config":
		fs.Bool(&direct, "direct", "", false, "also let producers publish straight to events.<their tags> (skipping ingest's schemas and rate limits)")
		nargs = 0
	case "list":
		nargs = 0
	case "get", "disable", "enable", "delete":
	default:
		fmt.Fprint(stdout, producersUsage)
		return fmt.Errorf("unknown producers command %q", cmd)
	}
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != nargs {
		if nargs == 0 {
			return fmt.Errorf("producers %s takes no arguments, got %q", cmd, pos)
		}
		return fmt.Errorf("producers %s takes a producer id", cmd)
	}
	if spec.set != nil {
		visitSet(fs.FlagSet(), spec.set)
	}
	switch {
	case cmd == "create" && !spec.set["name"]:
		return errors.New("producers create needs --name")
	case cmd == "update" && len(spec.set) == 0:
		return errors.New("producers update: nothing to change (--name, --tags, --rate, --burst, --owns)")
	case cmd == "rotate" && credential == "":
		return errors.New("producers rotate needs --credential password, api_key or jwt_secret")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var id string
	if nargs == 1 {
		id = pos[0]
	}
	return a.explain(a.exec(ctx, c, stdout, cmd, id, &spec, credential, direct))
}

// exec carries out a parsed producers command.
func (a *adminFlags) exec(ctx context.Context, c *client.Client, w io.Writer, cmd, id string, spec *specFlags, credential string, direct bool) error {
	switch cmd {
	case "create":
		p, err := c.CreateProducer(ctx, spec.create())
		return a.show(w, p, err, "Created")
	case "update":
		if spec.set["rate"] != spec.set["burst"] { // the API replaces the rate as a whole: keep the other half
			p, err := c.Producer(ctx, id)
			if err != nil {
				return err
			}
			spec.fillRate(p.Rate)
		}
		p, err := c.UpdateProducer(ctx, id, spec.update())
		return a.show(w, p, err, "Updated")
	case "get":
		p, err := c.Producer(ctx, id)
		return a.show(w, p, err, "")
	case "disable", "enable":
		p, err := c.SetProducerEnabled(ctx, id, cmd == "enable")
		return a.show(w, p, err, strings.ToUpper(cmd[:1])+cmd[1:]+"d")
	case "rotate":
		p, err := c.RotateProducer(ctx, id, credential)
		return a.show(w, p, err, "Rotated the "+credential+" of")
	case "delete":
		if err := c.DeleteProducer(ctx, id); err != nil {
			return err
		}
		if !a.json {
			fmt.Fprintf(w, "Deleted producer %s.\n", id)
		}
		return nil
	case "list":
		ps, err := c.Producers(ctx)
		if err != nil {
			return err
		}
		if a.json {
			return printJSON(w, struct {
				Producers []client.ProducerInfo `json:"producers"`
			}{ps})
		}
		printList(w, ps)
		return nil
	default: // nats-config
		s, err := c.NATSConfig(ctx, direct)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, s)
		return err
	}
}

// show prints the producer an API call answered with, headed by verb
// ("Created", "Disabled" …) when not empty.
func (a *adminFlags) show(w io.Writer, p *client.ProducerInfo, err error, verb string) error {
	if err != nil {
		return err
	}
	if a.json {
		return printJSON(w, p)
	}
	if verb != "" {
		fmt.Fprintf(w, "%s producer %s (%s).\n", verb, p.Name, p.ID)
	}
	printProducer(w, p)
	return nil
}

// printJSON prints v as indented JSON, leaving tag patterns such as
// BILLING.> readable.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("print json: %w", err)
	}
	return nil
}

func printProducer(w io.Writer, p *client.ProducerInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  id\t%s\n", p.ID)
	fmt.Fprintf(tw, "  name\t%s\n", p.Name)
	fmt.Fprintf(tw, "  enabled\t%v\n", p.Enabled)
	fmt.Fprintf(tw, "  tags\t%s\n", strings.Join(p.Tags, ", "))
	fmt.Fprintf(tw, "  owns\t%s\n", orNone(p.Owned))
	fmt.Fprintf(tw, "  rate\t%s\n", rateText(p.Rate.PerSecond, p.Rate.Burst))
	for _, k := range p.APIKeys {
		fmt.Fprintf(tw, "  api key\t%s… (created %s)\n", k.Prefix, k.CreatedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "  created\t%s\n", p.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "  last seen\t%s\n", seen(p.LastSeen))
	_ = tw.Flush()
	cr := p.Credentials
	if cr == nil {
		return
	}
	fmt.Fprintln(w, "\nCredentials, shown this once (store them now):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if cr.Password != "" {
		fmt.Fprintf(tw, "  password\t%s\t(HTTP Basic, user %s)\n", cr.Password, p.ID)
	}
	if cr.APIKey != "" {
		fmt.Fprintf(tw, "  api key\t%s\t(Authorization: Bearer <api key>)\n", cr.APIKey)
	}
	if cr.JWTSecret != "" {
		fmt.Fprintf(tw, "  jwt secret\t%s\t(HS256 key, base64url; sub = %s)\n", cr.JWTSecret, p.ID)
	}
	_ = tw.Flush()
}

func printList(w io.Writer, ps []client.ProducerInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tENABLED\tTAGS\tOWNS\tRATE\tLAST SEEN")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Enabled, strings.Join(p.Tags, ","),
			orNone(p.Owned), rateText(p.Rate.PerSecond, p.Rate.Burst), seen(p.LastSeen))
	}
	_ = tw.Flush()
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "-"
	}
	return strings.Join(ss, ",")
}

func rateText(perSecond float64, burst int) string {
	switch {
	case perSecond < 0:
		return "unlimited"
	case perSecond == 0 && burst == 0:
		return "default"
	}
	s := "default"
	if perSecond > 0 {
		s = strconv.FormatFloat(perSecond, 'f', -1, 64) + "/s"
	}
	if burst > 0 {
		s += " burst " + strconv.Itoa(burst)
	}
	return s
}

func seen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}

// specFlags are the flags of create and update; set records which were
// given, so that update sends only those.
type specFlags struct {
	name, tags, owns string
	rate             float64
	burst            int
	set              map[string]bool
}

func (s *specFlags) flags(fs *conf.Set) {
	fs.String(&s.name, "name", "", "", "unique name of the producer (letters, digits, '-', '_')")
	fs.String(&s.tags, "tags", "", "", "comma-separated tag patterns the producer may publish (default: every tag)")
	fs.String(&s.owns, "owns", "", "", "comma-separated categories the producer owns (no other producer may write them)")
	fs.Float64(&s.rate, "rate", "", 0, "events per second on average (0: the server's default; negative: unlimited)")
	fs.Int(&s.burst, "burst", "", 0, "events at once (0: the server's default)")
	s.set = map[string]bool{}
}

// create builds the producer to register from the flags given.
func (s *specFlags) create() client.ProducerSpec {
	spec := client.ProducerSpec{Name: s.name, Rate: client.Rate{PerSecond: s.rate, Burst: s.burst}}
	if s.set["tags"] {
		spec.Tags = splitList(s.tags)
	}
	if s.set["owns"] {
		spec.Owns = splitList(s.owns)
	}
	return spec
}

// update builds the change of a producer from the flags given: the others
// stay as they are.
func (s *specFlags) update() client.ProducerUpdate {
	var u client.ProducerUpdate
	if s.set["name"] {
		u.Name = &s.name
	}
	if s.set["tags"] {
		t := splitList(s.tags)
		u.Tags = &t
	}
	if s.set["owns"] {
		o := splitList(s.owns)
		u.Owns = &o
	}
	if s.set["rate"] || s.set["burst"] {
		u.Rate = &client.Rate{PerSecond: s.rate, Burst: s.burst}
	}
	return u
}

// fillRate completes a rate change given by one flag with the producer's
// current value of the other.
func (s *specFlags) fillRate(current client.Rate) {
	if !s.set["rate"] {
		s.rate = current.PerSecond
	}
	if !s.set["burst"] {
		s.burst = current.Burst
	}
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	out := []string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments (`get ID --json`), which flag.Parse alone does
// not allow, and records in any specFlags which flags were given.
func parseInterleaved(fs *conf.Set, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.FlagSet().Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// visitSet records the flags given on the command line in set.
func visitSet(f *flag.FlagSet, set map[string]bool) {
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
}

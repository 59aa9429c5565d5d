package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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

// adminClient talks to the producers admin API.
type adminClient struct {
	server string
	token  string
	json   bool
	hc     *http.Client
}

func (c *adminClient) flags(fs *conf.Set) {
	fs.String(&c.server, "server", "EVENTSYNC_SERVER", "http://127.0.0.1:8080", "base URL of the EventSync HTTP API")
	fs.String(&c.token, "admin-token", "EVENTSYNC_ADMIN_TOKEN", "", "admin token of the EventSync server (its ADMIN_TOKEN)")
	fs.Bool(&c.json, "json", "", false, "print the API's JSON instead of text")
}

// apiError is a problem answered by the API.
type apiError struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Owner  string `json:"owner"`
	Errors []struct {
		Pointer string `json:"pointer"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Title)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "\n  %s %s", fe.Pointer, fe.Detail)
	}
	return b.String()
}

// do sends a request with a JSON body (when not nil) and returns the body
// of a 2xx answer; other answers are an *apiError.
func (c *adminClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	if c.token == "" {
		return nil, errors.New("no admin token: set --admin-token or $EVENTSYNC_ADMIN_TOKEN")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	ae := &apiError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		_ = json.Unmarshal(b, ae) // the status alone says enough when the body is odd
	} else if resp.StatusCode == http.StatusNotFound {
		ae.Detail = "no admin API at " + c.server + " (is it an EventSync server?)"
	}
	return nil, ae
}

// producerView is a producer as the admin API shows it.
type producerView struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Enabled bool     `json:"enabled"`
	Tags    []string `json:"tags"`
	Owns    []string `json:"owns"`
	Owned   []string `json:"owned"`
	Rate    struct {
		PerSecond float64 `json:"per_second"`
		Burst     int     `json:"burst"`
	} `json:"rate"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	APIKeys   []struct {
		Prefix    string    `json:"prefix"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"api_keys"`
	Credentials *struct {
		Password  string `json:"password"`
		APIKey    string `json:"api_key"`
		JWTSecret string `json:"jwt_secret"`
	} `json:"credentials"`
}

// producerSpec is the body of create and update; nil members are left out.
type producerSpec struct {
	Name *string   `json:"name,omitempty"`
	Tags *[]string `json:"tags,omitempty"`
	Rate *rateSpec `json:"rate,omitempty"`
	Owns *[]string `json:"owns,omitempty"`
}

type rateSpec struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
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
	c := &adminClient{hc: &http.Client{Timeout: 30 * time.Second}}
	fs := conf.New("eventsync producers "+cmd, getenv, stdout)
	c.flags(fs)
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
	var id string
	if nargs == 1 {
		id = url.PathEscape(pos[0])
	}

	switch cmd {
	case "create":
		if !spec.set["name"] {
			return errors.New("producers create needs --name")
		}
		return c.show(ctx, stdout, "POST", "/v1/producers", spec.body(), "Created")
	case "update":
		if len(spec.set) == 0 {
			return errors.New("producers update: nothing to change (--name, --tags, --rate, --burst, --owns)")
		}
		if spec.set["rate"] != spec.set["burst"] { // the API replaces the rate as a whole: keep the other half
			if err := c.fillRate(ctx, id, &spec); err != nil {
				return err
			}
		}
		return c.show(ctx, stdout, "PATCH", "/v1/producers/"+id, spec.body(), "Updated")
	case "get":
		return c.show(ctx, stdout, "GET", "/v1/producers/"+id, nil, "")
	case "disable", "enable":
		return c.show(ctx, stdout, "POST", "/v1/producers/"+id+"/"+cmd, nil, strings.ToUpper(cmd[:1])+cmd[1:]+"d")
	case "rotate":
		if credential == "" {
			return errors.New("producers rotate needs --credential password, api_key or jwt_secret")
		}
		return c.show(ctx, stdout, "POST", "/v1/producers/"+id+"/rotate", map[string]string{"credential": credential}, "Rotated the "+credential+" of")
	case "delete":
		if _, err := c.do(ctx, "DELETE", "/v1/producers/"+id, nil); err != nil {
			return err
		}
		if !c.json {
			fmt.Fprintf(stdout, "Deleted producer %s.\n", pos[0])
		}
		return nil
	case "list":
		b, err := c.do(ctx, "GET", "/v1/producers", nil)
		if err != nil {
			return err
		}
		if c.json {
			return printJSON(stdout, b)
		}
		var l struct {
			Producers []producerView `json:"producers"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		printList(stdout, l.Producers)
		return nil
	default: // nats-config
		path := "/v1/producers/nats-config"
		if direct {
			path += "?direct=true"
		}
		b, err := c.do(ctx, "GET", path, nil)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
}

// fillRate completes a rate change given by one flag with the producer's
// current value of the other.
func (c *adminClient) fillRate(ctx context.Context, id string, s *specFlags) error {
	b, err := c.do(ctx, "GET", "/v1/producers/"+id, nil)
	if err != nil {
		return err
	}
	var p producerView
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if !s.set["rate"] {
		s.rate = p.Rate.PerSecond
	}
	if !s.set["burst"] {
		s.burst = p.Rate.Burst
	}
	return nil
}

// show sends a request answered with one producer and prints it, headed
// by verb ("Created", "Disabled" …) when not empty.
func (c *adminClient) show(ctx context.Context, w io.Writer, method, path string, body any, verb string) error {
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(w, b)
	}
	var p producerView
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if verb != "" {
		fmt.Fprintf(w, "%s producer %s (%s).\n", verb, p.Name, p.ID)
	}
	printProducer(w, &p)
	return nil
}

func printJSON(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("answer is not JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

func printProducer(w io.Writer, p *producerView) {
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

func printList(w io.Writer, ps []producerView) {
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

// body builds the request body from the flags given.
func (s *specFlags) body() producerSpec {
	var b producerSpec
	if s.set["name"] {
		b.Name = &s.name
	}
	if s.set["tags"] {
		t := splitList(s.tags)
		b.Tags = &t
	}
	if s.set["owns"] {
		o := splitList(s.owns)
		b.Owns = &o
	}
	if s.set["rate"] || s.set["burst"] {
		b.Rate = &rateSpec{PerSecond: s.rate, Burst: s.burst}
	}
	return b
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

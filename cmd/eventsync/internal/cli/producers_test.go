package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"

	"github.com/eventsync/eventsync/cmd/eventsync/internal/apptest"
)

const adminToken = "admin-token-for-cli-tests-0123456789"

// startAdmin starts the all-in-one with authentication on and an admin
// token (from AUTH and ADMIN_TOKEN, as an operator sets them; on loopback
// it would default to no authentication) and returns its HTTP base URL.
func startAdmin(t *testing.T) string {
	t.Helper()
	return apptest.Start(t, map[string]string{"AUTH": "clients", "ADMIN_TOKEN": adminToken}).Base
}

// cli runs `eventsync producers args…` with the server and token in the
// environment, and returns what it printed.
func cli(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	return cliAs(t, "producers", env, args...)
}

// cliAs runs `eventsync cmd args…`: producers or its alias clients.
func cliAs(t *testing.T, cmd string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCLI(t.Context(), env, nil, &out, &errOut, append([]string{cmd}, args...)...)
	return out.String(), err
}

// mustCLI is cli that fails the test on an error.
func mustCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, err := cli(t, env, args...)
	if err != nil {
		t.Fatalf("producers %q = %v\n%s", args, err, out)
	}
	return out
}

type cliProducer struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Enabled bool     `json:"enabled"`
	Tags    []string `json:"tags"`
	Scopes  struct {
		Read      []string `json:"read"`
		Subscribe []string `json:"subscribe"`
		Consume   []string `json:"consume"`
		Admin     bool     `json:"admin"`
	} `json:"scopes"`
	Owned []string `json:"owned"`
	Rate  struct {
		PerSecond float64 `json:"per_second"`
		Burst     int     `json:"burst"`
	} `json:"rate"`
	Credentials *struct {
		Password  string `json:"password"`
		APIKey    string `json:"api_key"`
		JWTSecret string `json:"jwt_secret"`
	} `json:"credentials"`
}

func decodeCLI[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	return v
}

var (
	idLine     = regexp.MustCompile(`(?m)^  id\s+(prd_[0-9a-f]{32})$`)
	apiKeyLine = regexp.MustCompile(`(?m)^  api key\s+(esk_[A-Za-z0-9_-]{43})\s`)
)

func TestProducersCLI(t *testing.T) {
	base := startAdmin(t)
	env := map[string]string{"EVENTSYNC_SERVER": base, "EVENTSYNC_ADMIN_TOKEN": adminToken}

	out := mustCLI(t, env, "create", "--name", "billing", "--tags", "BILLING.>, INVOICE.*", "--rate", "100", "--burst", "200", "--owns", "BILLING")
	for _, want := range []string{"Created producer billing", "BILLING.>, INVOICE.*", "100/s burst 200", "Credentials, shown this once", "password", "jwt secret"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	m := idLine.FindStringSubmatch(out)
	k := apiKeyLine.FindStringSubmatch(out)
	if m == nil || k == nil {
		t.Fatalf("create output lacks the id or the API key:\n%s", out)
	}
	id, key := m[1], k[1]

	other := decodeCLI[cliProducer](t, mustCLI(t, env, "create", "--json", "--name", "orders"))
	if other.Credentials == nil || other.Credentials.Password == "" || !strings.HasPrefix(other.Credentials.APIKey, "esk_") || other.Credentials.JWTSecret == "" {
		t.Errorf("create --json credentials = %+v; want all three", other.Credentials)
	}
	if len(other.Tags) != 1 || other.Tags[0] != ">" {
		t.Errorf("default tags = %v; want [>]", other.Tags)
	}

	out = mustCLI(t, env, "list")
	for _, want := range []string{"ID", "NAME", id, "billing", "BILLING", other.ID, "orders", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, key) {
		t.Errorf("list shows the API key")
	}
	l := decodeCLI[struct{ Producers []cliProducer }](t, mustCLI(t, env, "list", "--json"))
	if len(l.Producers) != 2 {
		t.Errorf("list --json = %d producers; want 2", len(l.Producers))
	}

	// Flags may follow the id.
	got := decodeCLI[cliProducer](t, mustCLI(t, env, "get", id, "--json"))
	if got.Name != "billing" || got.Credentials != nil || got.Rate.PerSecond != 100 || got.Rate.Burst != 200 {
		t.Errorf("get --json = %+v", got)
	}
	if out := mustCLI(t, env, "get", id); strings.Contains(out, "Credentials") || !strings.Contains(out, "billing") {
		t.Errorf("get shows credentials or misses the name:\n%s", out)
	}

	// --rate alone keeps the burst.
	got = decodeCLI[cliProducer](t, mustCLI(t, env, "update", id, "--rate", "5", "--json"))
	if got.Rate.PerSecond != 5 || got.Rate.Burst != 200 {
		t.Errorf("update --rate 5 = rate %+v; want 5/s burst 200", got.Rate)
	}
	got = decodeCLI[cliProducer](t, mustCLI(t, env, "update", id, "--name", "payments", "--owns", "", "--json"))
	if got.Name != "payments" || len(got.Owned) != 0 || got.Rate.PerSecond != 5 {
		t.Errorf("update --name payments --owns '' = %+v", got)
	}

	if out := mustCLI(t, env, "disable", id); !strings.Contains(out, "Disabled producer payments") || !regexp.MustCompile(`(?m)enabled\s+false`).MatchString(out) {
		t.Errorf("disable output:\n%s", out)
	}
	if out := mustCLI(t, env, "enable", id); !strings.Contains(out, "Enabled producer payments") {
		t.Errorf("enable output:\n%s", out)
	}

	out = mustCLI(t, env, "rotate", id, "--credential", "api_key")
	k = apiKeyLine.FindStringSubmatch(out)
	if k == nil || k[1] == key || strings.Contains(out, "password  ") {
		t.Errorf("rotate api_key output wants only a new key:\n%s", out)
	}
	rot := decodeCLI[cliProducer](t, mustCLI(t, env, "rotate", "--credential", "password", "--json", id))
	if rot.Credentials == nil || rot.Credentials.Password == "" || rot.Credentials.APIKey != "" {
		t.Errorf("rotate password --json credentials = %+v", rot.Credentials)
	}

	out = mustCLI(t, env, "nats-config")
	for _, want := range []string{"authorization {", `user: "` + id + `"`, `password: "$2a$`, `allow: ["eventsync.ingest"]`, `"_INBOX.` + id + `.>"`} {
		if !strings.Contains(out, want) {
			t.Errorf("nats-config lacks %q:\n%s", want, out)
		}
	}
	if out := mustCLI(t, env, "nats-config", "--direct"); !strings.Contains(out, `"events.BILLING.>", "events.INVOICE.*"`) {
		t.Errorf("nats-config --direct lacks the event subjects:\n%s", out)
	}

	if out := mustCLI(t, env, "delete", id); !strings.Contains(out, "Deleted producer "+id) {
		t.Errorf("delete output:\n%s", out)
	}
	if _, err := cli(t, env, "get", id); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("get after delete = %v; want a 404", err)
	}
}

func TestProducersCLIErrors(t *testing.T) {
	base := startAdmin(t)
	env := map[string]string{"EVENTSYNC_SERVER": base, "EVENTSYNC_ADMIN_TOKEN": adminToken}
	billing := decodeCLI[cliProducer](t, mustCLI(t, env, "create", "--json", "--name", "billing", "--owns", "BILLING"))
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error
	}{
		{"no command", env, nil, "no producers command"},
		{"unknown command", env, []string{"frobnicate"}, `unknown producers command "frobnicate"`},
		{"no token", map[string]string{"EVENTSYNC_SERVER": base}, []string{"list"}, "no admin token"},
		{"wrong token", env, []string{"list", "--admin-token", "wrong"}, "401 Unauthorized"},
		{"create without name", env, []string{"create"}, "needs --name"},
		{"get without id", env, []string{"get"}, "takes a producer id"},
		{"get with two ids", env, []string{"get", "a", "b"}, "takes a producer id"},
		{"list with an argument", env, []string{"list", "x"}, "takes no arguments"},
		{"update without changes", env, []string{"update", "prd_x"}, "nothing to change"},
		{"rotate without credential", env, []string{"rotate", "prd_x"}, "needs --credential"},
		{"rotate bad credential", env, []string{"rotate", "prd_0123456789abcdef0123456789abcdef", "--credential", "token"}, "422 Unprocessable Entity"},
		{"invalid tags", env, []string{"create", "--name", "x", "--tags", "A.>.B"}, "422 Unprocessable Entity"},
		{"invalid read pattern", env, []string{"create", "--name", "x", "--read", "A.*,A..B"}, "\n  /scopes/read/1 "},
		{"invalid consume pattern", env, []string{"update", billing.ID, "--consume", "a b", "--read", "", "--subscribe", "", "--admin=false"}, "\n  /scopes/consume/0 "},
		{"bad admin value", env, []string{"create", "--name", "x", "--admin=maybe"}, "invalid boolean value"},
		{"name taken", env, []string{"create", "--name", "BILLING"}, `409 Conflict: name "BILLING" is taken`},
		{"category owned", env, []string{"create", "--name", "thief", "--owns", "BILLING"}, "409 Conflict: category BILLING is owned by producer"},
		{"bad flag", env, []string{"list", "--bogus"}, "flag provided but not defined"},
		{"not an EventSync server", map[string]string{"EVENTSYNC_ADMIN_TOKEN": adminToken}, []string{"list", "--server", base + "/nothing"}, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := cli(t, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("producers %q = %v\n%s; want an error with %q", tt.args, err, out, tt.want)
			}
		})
	}
	// Field errors are listed under the problem.
	_, err := cli(t, env, "create", "--name", "x y", "--tags", "A.>.B")
	if err == nil || !strings.Contains(err.Error(), "\n  /name ") || !strings.Contains(err.Error(), "\n  /tags/0 ") {
		t.Errorf("create with two invalid fields = %v; want both pointers listed", err)
	}
}

// Scopes are given with --read, --subscribe, --consume and --admin;
// update keeps the scopes not given; tables show them on one line.
// "eventsync clients" is "eventsync producers".
func TestProducersCLIScopes(t *testing.T) {
	base := startAdmin(t)
	env := map[string]string{"EVENTSYNC_SERVER": base, "EVENTSYNC_ADMIN_TOKEN": adminToken}

	out := mustCLI(t, env, "create", "--name", "dashboard", "--read", "BILLING.>,ORDERS.*", "--subscribe", "BILLING.>", "--subscribe", "ORDERS.>")
	for _, want := range []string{"Created producer dashboard", "read=BILLING.>,ORDERS.*; subscribe=BILLING.>,ORDERS.>", "Credentials"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	m := idLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create output lacks the id:\n%s", out)
	}
	id := m[1]
	got := decodeCLI[cliProducer](t, mustCLI(t, env, "get", id, "--json"))
	if len(got.Tags) != 0 || strings.Join(got.Scopes.Read, " ") != "BILLING.> ORDERS.*" || strings.Join(got.Scopes.Subscribe, " ") != "BILLING.> ORDERS.>" ||
		len(got.Scopes.Consume) != 0 || got.Scopes.Admin {
		t.Errorf("get --json = %+v; want no tags, read and subscribe scopes", got)
	}
	root := decodeCLI[cliProducer](t, mustCLI(t, env, "create", "--json", "--name", "root", "--admin"))
	if !root.Scopes.Admin || len(root.Tags) != 0 {
		t.Errorf("create --admin = %+v; want admin scope and no tags", root)
	}
	writer := decodeCLI[cliProducer](t, mustCLI(t, env, "create", "--json", "--name", "writer", "--tags", "A.*"))
	if writer.Scopes.Admin || len(writer.Scopes.Read) != 0 {
		t.Errorf("create without scope flags = %+v; want no scopes", writer)
	}

	out = mustCLI(t, env, "list")
	for _, want := range []string{"SCOPES", "read=BILLING.>,ORDERS.* subscribe=BILLING.>,ORDERS.>", "admin"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^prd_\S+\s+writer\s+true\s+A\.\*\s+-\s`).MatchString(out) {
		t.Errorf("list shows the writer's scopes as something else than -:\n%s", out)
	}

	// update replaces only the scopes given.
	got = decodeCLI[cliProducer](t, mustCLI(t, env, "update", id, "--consume", "BILLING.*", "--json"))
	if strings.Join(got.Scopes.Read, " ") != "BILLING.> ORDERS.*" || strings.Join(got.Scopes.Subscribe, " ") != "BILLING.> ORDERS.>" ||
		strings.Join(got.Scopes.Consume, " ") != "BILLING.*" {
		t.Errorf("update --consume = %+v; want the other scopes kept", got.Scopes)
	}
	got = decodeCLI[cliProducer](t, mustCLI(t, env, "update", id, "--read", "", "--admin", "--json"))
	if len(got.Scopes.Read) != 0 || !got.Scopes.Admin || len(got.Scopes.Subscribe) != 2 || len(got.Scopes.Consume) != 1 {
		t.Errorf("update --read '' --admin = %+v; want read removed, admin added, the rest kept", got.Scopes)
	}
	got = decodeCLI[cliProducer](t, mustCLI(t, env, "update", id, "--admin=false", "--read", "X.>", "--subscribe", "", "--consume", "", "--json"))
	if got.Scopes.Admin || strings.Join(got.Scopes.Read, " ") != "X.>" || len(got.Scopes.Subscribe)+len(got.Scopes.Consume) != 0 {
		t.Errorf("update of every scope = %+v; want read X.> only", got.Scopes)
	}
	if out := mustCLI(t, env, "get", id); !regexp.MustCompile(`(?m)^  scopes\s+read=X\.>$`).MatchString(out) {
		t.Errorf("get shows the scopes otherwise:\n%s", out)
	}

	// The clients command is the producers command.
	out, err := cliAs(t, "clients", env, "get", id, "--json")
	if err != nil || decodeCLI[cliProducer](t, out).Name != "dashboard" {
		t.Errorf("clients get = %v\n%s; want the client", err, out)
	}
	if out, err := cliAs(t, "clients", env, "update", id, "--read", "Y.>", "--json"); err != nil || strings.Join(decodeCLI[cliProducer](t, out).Scopes.Read, " ") != "Y.>" {
		t.Errorf("clients update --read = %v\n%s", err, out)
	}
	if out, err := cliAs(t, "clients", nil, "help"); err != nil || !strings.Contains(out, `"eventsync clients" is the same command`) {
		t.Errorf("clients help = %v\n%s", err, out)
	}
}

func TestProducersHelp(t *testing.T) {
	for _, args := range [][]string{{"-help"}, {"help"}} {
		out, err := cli(t, nil, args...)
		if err != nil || !strings.Contains(out, "eventsync producers create --name NAME") {
			t.Errorf("producers %q = %v\n%s; want the usage", args, err, out)
		}
	}
	out, err := cli(t, nil, "create", "-help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("producers create -help = %v; want flag.ErrHelp", err)
	}
	for _, want := range []string{"-server", "$EVENTSYNC_SERVER", "-admin-token", "$EVENTSYNC_ADMIN_TOKEN", "-name", "-tags", "-rate", "-burst", "-owns", "-read", "-subscribe", "-consume", "-admin", "-json"} {
		if !strings.Contains(out, want) {
			t.Errorf("producers create -help lacks %q:\n%s", want, out)
		}
	}
}

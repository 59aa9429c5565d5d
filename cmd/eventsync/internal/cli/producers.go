package cli

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventsync/eventsync/pkg/client"
	"github.com/eventsync/eventsync/pkg/conf"
)

const producersUsage = `eventsync producers: manage the producers, the clients of EventSync: what tags
each may write (--tags), and what else it may do (its scopes: --read, --subscribe
and --consume tag patterns, --admin for everything), through the admin API of a
running EventSync (ingest or all-in-one). "eventsync clients" is the same command.

Usage:
  eventsync producers create --name NAME [--tags 'BILLING.>,INVOICE.*'] [--rate N --burst N] [--owns BILLING]
                             [--read PATTERNS --subscribe PATTERNS --consume PATTERNS --admin]
                             [--id ID --jwt-secret-raw SECRET_KEY | --jwt-secret BASE64URL]
  eventsync producers list
  eventsync producers get ID
  eventsync producers update ID [--name NAME] [--tags …] [--rate N] [--burst N] [--owns …]
                                [--read …] [--subscribe …] [--consume …] [--admin=true|false]
  eventsync producers disable ID
  eventsync producers enable ID
  eventsync producers delete ID
  eventsync producers rotate ID --credential password|api_key|jwt_secret
  eventsync producers nats-config [--direct]

Credentials are printed once, by create and rotate: store them then. A client
of another system (The Eye) is imported with the id and secret it already has:
--id and --jwt-secret-raw (its secret_key as it is) or --jwt-secret (base64url).
`

// producers are what the producers commands manage.
func producers() *resource[client.ProducerInfo] {
	return &resource[client.ProducerInfo]{
		group: "producers", noun: "producer", key: "id", admin: true,
		listAbout:   "Lists the producers (never their credentials).\n",
		getAbout:    "Shows one producer (without its credentials).\n",
		deleteAbout: "Deletes a producer: its credentials stop working.\n",
		list:        (*client.Client).Producers,
		get:         (*client.Client).Producer,
		del:         (*client.Client).DeleteProducer,
		columns:     []string{"ID", "NAME", "ENABLED", "TAGS", "SCOPES", "OWNS", "RATE", "LAST SEEN"},
		row: func(p client.ProducerInfo) []string {
			return []string{p.ID, p.Name, strconv.FormatBool(p.Enabled), joined(p.Tags, ","), scopesText(p.Scopes, " "), joined(p.Owned, ","),
				rateText(p.Rate), seen(p.LastSeen)}
		},
		details: func(p *client.ProducerInfo) [][]string {
			rows := [][]string{
				{"id", p.ID},
				{"name", p.Name},
				{"enabled", strconv.FormatBool(p.Enabled)},
				{"tags", joined(p.Tags, ", ")},
				{"scopes", scopesText(p.Scopes, "; ")},
				{"owns", joined(p.Owned, ", ")},
				{"rate", rateText(p.Rate)},
			}
			for _, k := range p.APIKeys {
				rows = append(rows, []string{"api key", k.Prefix + "… (created " + localTime(k.CreatedAt) + ")"})
			}
			return append(rows, []string{"created", localTime(p.CreatedAt)}, []string{"last seen", seen(p.LastSeen)})
		},
		title: func(p *client.ProducerInfo) string { return p.Name + " (" + p.ID + ")" },
		secrets: func(p *client.ProducerInfo) (string, [][]string) {
			cr := p.Credentials
			if cr == nil {
				return "", nil
			}
			var rows [][]string
			if cr.Password != "" {
				rows = append(rows, []string{"password", cr.Password, "(HTTP Basic, user " + p.ID + ")"})
			}
			if cr.APIKey != "" {
				rows = append(rows, []string{"api key", cr.APIKey, "(Authorization: Bearer <api key>)"})
			}
			if cr.JWTSecret != "" {
				rows = append(rows, []string{"jwt secret", cr.JWTSecret, "(HS256 key, base64url; sub = " + p.ID + ")"})
			} else if cr.Password != "" && cr.APIKey != "" {
				// Created with the client's own JWT secret, which is not
				// repeated.
				rows = append(rows, []string{"jwt secret", "(imported)", "(HS256 key given with --jwt-secret; sub = " + p.ID + ")"})
			}
			return "Credentials, shown this once (store them now):", rows
		},
	}
}

// scopesText shows a client's scopes on one line: "admin", then
// read=A.>,B.* subscribe=… consume=…, each present only when granted,
// joined by sep; "-" for none.
func scopesText(s client.Scopes, sep string) string {
	var parts []string
	if s.Admin {
		parts = append(parts, "admin")
	}
	for _, sc := range []struct {
		name     string
		patterns []string
	}{{"read", s.Read}, {"subscribe", s.Subscribe}, {"consume", s.Consume}} {
		if len(sc.patterns) > 0 {
			parts = append(parts, sc.name+"="+strings.Join(sc.patterns, ","))
		}
	}
	return joined(parts, sep)
}

func rateText(r client.Rate) string {
	switch {
	case r.PerSecond < 0:
		return "unlimited"
	case r.PerSecond == 0 && r.Burst == 0:
		return "default"
	}
	s := "default"
	if r.PerSecond > 0 {
		s = strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + "/s"
	}
	if r.Burst > 0 {
		s += " burst " + strconv.Itoa(r.Burst)
	}
	return s
}

func seen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return localTime(t)
}

func runProducers(ctx context.Context, args []string, con Console) error {
	ps := producers()
	cmds := map[string]func(context.Context, []string, Console) error{
		"list":        ps.listCmd,
		"get":         ps.getCmd,
		"delete":      ps.deleteCmd,
		"create":      producersCreate,
		"update":      producersUpdate,
		"rotate":      producersRotate,
		"nats-config": producersNATSConfig,
		"disable":     producersEnable("disable"),
		"enable":      producersEnable("enable"),
	}
	return group{name: "producers", usage: producersUsage, admin: true, cmds: cmds}.run(ctx, args, con)
}

// specFlags are the flags of create and update.
type specFlags struct {
	name                     string
	tags, owns               listFlag
	read, subscribe, consume listFlag
	admin                    bool
	rate                     float64
	burst                    int
}

func (s *specFlags) flags(fs *conf.Set) {
	fs.String(&s.name, "name", "", "", "unique name of the producer (letters, digits, '-', '_')")
	fs.Var(&s.tags, "tags", "", "tag patterns the producer may publish, comma-separated or repeated (default: every tag, unless it is given scopes)")
	fs.Var(&s.owns, "owns", "", "categories the producer owns (no other producer may write them), comma-separated or repeated")
	fs.Var(&s.read, "read", "", "read scope: tag patterns whose events it may read (query, live tail), comma-separated or repeated")
	fs.Var(&s.subscribe, "subscribe", "", "subscribe scope: tag patterns its own webhook subscriptions may cover, comma-separated or repeated")
	fs.Var(&s.consume, "consume", "", "consume scope: tag patterns its own named consumers may cover, comma-separated or repeated")
	fs.Bool(&s.admin, "admin", "", false, "admin scope: everything (producers, schemas, every subscription and consumer); --admin=false takes it away")
	fs.Float64(&s.rate, "rate", "", 0, "events per second on average (0: the server's default; negative: unlimited)")
	fs.Int(&s.burst, "burst", "", 0, "events at once (0: the server's default)")
}

// scopeFlags are the flags that set scopes.
var scopeFlags = []string{"read", "subscribe", "consume", "admin"}

// scopes returns the scopes the flags give, over base: the flags not
// given keep base's.
func (s *specFlags) scopes(base client.Scopes, set map[string]bool) client.Scopes {
	for _, f := range []struct {
		flag *listFlag
		dst  *[]string
	}{{&s.read, &base.Read}, {&s.subscribe, &base.Subscribe}, {&s.consume, &base.Consume}} {
		if f.flag.given {
			*f.dst = f.flag.items
		}
	}
	if set["admin"] {
		base.Admin = s.admin
	}
	return base
}

const producersCreateAbout = `Registers a producer (POST /v1/producers) with its tag patterns, scopes, owned
categories and rate limit. Without --tags it may write every tag, unless it is
given scopes (--read, --subscribe, --consume, --admin): then it writes nothing.
Its credentials (a password, an API key and a JWT secret) are printed once:
store them then.

To import a client of another system (The Eye) that signs HS256 tokens with
sub = its client id, give that id (--id) and its secret: --jwt-secret-raw
takes the secret as the client uses it (its secret_key: the string's bytes
are the HMAC key), --jwt-secret the key's bytes in base64url. Its tokens
then authenticate it as this producer; the password and API key are new.
`

func producersCreate(ctx context.Context, args []string, con Console) error {
	ps := producers()
	c := ps.command(con, "create", " --name NAME [--tags PATTERNS --owns CATEGORIES --rate N --burst N]\n"+
		"    [--read PATTERNS --subscribe PATTERNS --consume PATTERNS --admin]\n"+
		"    [--id ID --jwt-secret-raw SECRET_KEY | --jwt-secret BASE64URL] [--json]", producersCreateAbout)
	var (
		s                           specFlags
		id, jwtSecret, jwtSecretRaw string
	)
	s.flags(c.fs)
	c.fs.String(&id, "id", "", "", "import a client under the id it has elsewhere (1-128 of A-Z a-z 0-9 . _ -; not prd_…): the sub of its tokens")
	c.fs.String(&jwtSecret, "jwt-secret", "", "", "import the client's HS256 key: its bytes in base64url")
	c.fs.String(&jwtSecretRaw, "jwt-secret-raw", "", "", "import the client's HS256 key as it uses it (The Eye's secret_key): the string's bytes are the key")
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	set := c.given()
	if !set["name"] {
		return c.fail(errors.New("needs --name"))
	}
	if set["jwt-secret"] && set["jwt-secret-raw"] {
		return c.fail(errors.New("give --jwt-secret or --jwt-secret-raw, not both"))
	}
	if set["jwt-secret-raw"] {
		if jwtSecretRaw == "" {
			return c.fail(errors.New("--jwt-secret-raw is empty"))
		}
		jwtSecret = client.RawJWTSecret(jwtSecretRaw)
	}
	spec := client.ProducerSpec{Name: s.name, Rate: client.Rate{PerSecond: s.rate, Burst: s.burst}, ID: id, JWTSecret: jwtSecret}
	if s.tags.given {
		spec.Tags = s.tags.items
	}
	if s.owns.given {
		spec.Owns = s.owns.items
	}
	spec.Scopes = s.scopes(client.Scopes{}, set)
	p, err := cl.CreateProducer(ctx, spec)
	return ps.show(c, "Created", p, err)
}

const producersUpdateAbout = `Changes what the flags given say of a producer (PATCH /v1/producers/{id});
the rest stays as it is. --rate or --burst alone keeps the other; a scope flag
(--read, --subscribe, --consume, --admin) keeps the scopes not given, and an
empty list (--read '') takes that scope away.
`

func producersUpdate(ctx context.Context, args []string, con Console) error {
	ps := producers()
	c := ps.command(con, "update", " KEY [--name NAME --tags PATTERNS --owns CATEGORIES --rate N --burst N]\n"+
		"    [--read PATTERNS --subscribe PATTERNS --consume PATTERNS --admin=true|false] [--json]", producersUpdateAbout)
	var s specFlags
	s.flags(c.fs)
	pos, cl, err := ps.parseKey(c, args)
	if err != nil {
		return err
	}
	set := c.given()
	scopesSet := slices.ContainsFunc(scopeFlags, func(f string) bool { return set[f] })
	if !set["name"] && !set["tags"] && !set["owns"] && !set["rate"] && !set["burst"] && !scopesSet {
		return c.fail(errors.New("nothing to change (--name, --tags, --rate, --burst, --owns, --read, --subscribe, --consume, --admin)"))
	}
	var u client.ProducerUpdate
	if set["name"] {
		u.Name = &s.name
	}
	if s.tags.given {
		u.Tags = &s.tags.items
	}
	if s.owns.given {
		u.Owns = &s.owns.items
	}
	// The API replaces the rate and the scopes as a whole: what the flags
	// leave out is kept from the producer as it is.
	var current *client.ProducerInfo
	someScopes := scopesSet && slices.ContainsFunc(scopeFlags, func(f string) bool { return !set[f] })
	if set["rate"] != set["burst"] || someScopes {
		if current, err = cl.Producer(ctx, pos[0]); err != nil {
			return c.fail(err)
		}
	}
	if scopesSet {
		var base client.Scopes
		if current != nil {
			base = current.Scopes
		}
		sc := s.scopes(base, set)
		u.Scopes = &sc
	}
	if set["rate"] || set["burst"] {
		if !set["rate"] {
			s.rate = current.Rate.PerSecond
		}
		if !set["burst"] {
			s.burst = current.Rate.Burst
		}
		u.Rate = &client.Rate{PerSecond: s.rate, Burst: s.burst}
	}
	p, err := cl.UpdateProducer(ctx, pos[0], u)
	return ps.show(c, "Updated", p, err)
}

// producersEnable returns disable or enable.
func producersEnable(sub string) func(context.Context, []string, Console) error {
	return func(ctx context.Context, args []string, con Console) error {
		about := "Lets a disabled producer write again.\n"
		if sub == "disable" {
			about = "Refuses a producer's events from now on, without deleting it.\n"
		}
		ps := producers()
		c := ps.command(con, sub, " KEY [--json]", about)
		pos, cl, err := ps.parseKey(c, args)
		if err != nil {
			return err
		}
		p, err := cl.SetProducerEnabled(ctx, pos[0], sub == "enable")
		return ps.show(c, strings.ToUpper(sub[:1])+sub[1:]+"d", p, err)
	}
}

func producersRotate(ctx context.Context, args []string, con Console) error {
	ps := producers()
	c := ps.command(con, "rotate", " KEY --credential password|api_key|jwt_secret [--json]",
		"Replaces one credential of a producer; the new one is printed once.\n")
	var credential string
	c.fs.String(&credential, "credential", "", "", "what to rotate: password, api_key or jwt_secret")
	pos, cl, err := ps.parseKey(c, args)
	if err != nil {
		return err
	}
	if credential == "" {
		return c.fail(errors.New("needs --credential password, api_key or jwt_secret"))
	}
	p, err := cl.RotateProducer(ctx, pos[0], credential)
	return ps.show(c, "Rotated the "+credential+" of", p, err)
}

func producersNATSConfig(ctx context.Context, args []string, con Console) error {
	c := producers().command(con, "nats-config", " [--direct]",
		"Prints the authorization block of a nats-server configuration that lets each producer\nrequest eventsync.ingest with its id and password.\n")
	var direct bool
	c.fs.Bool(&direct, "direct", "", false, "also let producers publish straight to events.<their tags> (skipping ingest's schemas and rate limits)")
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	s, err := cl.NATSConfig(ctx, direct)
	if err != nil {
		return c.fail(err)
	}
	_, err = io.WriteString(con.Out, s)
	return err
}

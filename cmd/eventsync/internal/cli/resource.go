package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/eventsync/eventsync/pkg/client"
)

// group is a command made of subcommands: subs, consumers, producers.
type group struct {
	name  string
	usage string // what it does and its subcommands; usage adds the flags they share
	admin bool   // its subcommands are admin commands
	cmds  map[string]func(ctx context.Context, args []string, con Console) error
}

// run runs the subcommand args name; help prints the usage.
func (g group) run(ctx context.Context, args []string, con Console) error {
	if len(args) == 0 {
		fmt.Fprint(con.Out, g.fullUsage())
		return fmt.Errorf("no %s command given", g.name)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(con.Out, g.fullUsage())
		return nil
	}
	if run, ok := g.cmds[cmd]; ok {
		return run(ctx, rest, con)
	}
	fmt.Fprint(con.Err, g.fullUsage())
	return fmt.Errorf("unknown %s command %q", g.name, cmd)
}

// fullUsage is the usage with the flags every subcommand takes.
func (g group) fullUsage() string {
	flags := "--token [$EVENTSYNC_TOKEN] and --json (print JSON)"
	if g.admin {
		flags = "--admin-token [$EVENTSYNC_ADMIN_TOKEN] and --json (print the API's JSON)"
	}
	return g.usage + fmt.Sprintf(`Every command takes --server [$EVENTSYNC_SERVER] (default http://127.0.0.1:8080),
%s.
Run "eventsync %s <command> -help" for the flags of a command.
`, flags, g.name)
}

// resource is a kind of thing the API keeps under an id or a name
// (subscriptions, consumers, producers). Its list, get and delete commands
// and the way it is shown are the same for every kind.
type resource[T any] struct {
	group string // the command group: subs
	noun  string // subscription; the JSON of a list is {"<noun>s": […]}
	key   string // what a command names one by: id, name
	admin bool   // its API needs the admin token

	listAbout, getAbout, deleteAbout string

	// The client's methods, such as (*client.Client).Subscriptions.
	list func(*client.Client, context.Context) ([]T, error)
	get  func(*client.Client, context.Context, string) (*T, error)
	del  func(*client.Client, context.Context, string) error

	columns []string                      // the header of list
	row     func(T) []string              // one row of list
	details func(*T) [][]string           // what get shows: name, value a row
	title   func(*T) string               // how a sentence names one: "billing (prd_…)"
	secrets func(*T) (string, [][]string) // secrets shown once (create, rotate): a heading and rows; "" for none
}

// command returns the subcommand sub of the resource's group; args is
// its synopsis after "<group> <sub>", where KEY stands for the id or name.
func (r *resource[T]) command(con Console, sub, args, about string) *command {
	name := r.group + " " + sub
	synopsis := name + strings.ReplaceAll(args, "KEY", strings.ToUpper(r.key))
	if r.admin {
		return adminCommand(con, name, synopsis, about)
	}
	return clientCommand(con, name, synopsis, about)
}

// parseKey is parse for a command that names one item (and, when more is
// not empty, more arguments: "a seq").
func (r *resource[T]) parseKey(c *command, args []string, more ...string) ([]string, *client.Client, error) {
	what := "a " + r.noun + " " + r.key
	for _, m := range more {
		what += " and " + m
	}
	return c.parse(args, 1+len(more), what)
}

// listCmd lists every item, as a table or with --json as {"<noun>s": […]}.
func (r *resource[T]) listCmd(ctx context.Context, args []string, con Console) error {
	c := r.command(con, "list", " [--json]", r.listAbout)
	_, cl, err := c.parse(args, 0, "")
	if err != nil {
		return err
	}
	items, err := r.list(cl, ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return printJSON(con.Out, map[string][]T{r.noun + "s": items})
	}
	if len(items) == 0 {
		_, err := fmt.Fprintf(con.Out, "No %ss.\n", r.noun)
		return err
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		rows[i] = r.row(it)
	}
	return printTable(con.Out, r.columns, rows)
}

// getCmd shows one item.
func (r *resource[T]) getCmd(ctx context.Context, args []string, con Console) error {
	c := r.command(con, "get", " KEY [--json]", r.getAbout)
	pos, cl, err := r.parseKey(c, args)
	if err != nil {
		return err
	}
	v, err := r.get(cl, ctx, pos[0])
	return r.show(c, "", v, err)
}

// deleteCmd deletes one item.
func (r *resource[T]) deleteCmd(ctx context.Context, args []string, con Console) error {
	c := r.command(con, "delete", " KEY [--json]", r.deleteAbout)
	pos, cl, err := r.parseKey(c, args)
	if err != nil {
		return err
	}
	if err := r.del(cl, ctx, pos[0]); err != nil {
		return c.fail(err)
	}
	if c.json {
		return printJSON(con.Out, map[string]string{"deleted": pos[0]})
	}
	_, err = fmt.Fprintf(con.Out, "Deleted %s %s.\n", r.noun, pos[0])
	return err
}

// show prints the item an API call answered with (or fails with its
// error): as JSON, or headed by verb ("Created", "Disabled" …) when not
// empty, its details, and the secrets it carries, shown this once.
func (r *resource[T]) show(c *command, verb string, v *T, err error) error {
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return printJSON(c.con.Out, v)
	}
	w := c.con.Out
	if verb != "" {
		fmt.Fprintf(w, "%s %s %s.\n", verb, r.noun, r.title(v))
	}
	if err := printDetails(w, r.details(v)); err != nil {
		return err
	}
	if r.secrets == nil {
		return nil
	}
	heading, rows := r.secrets(v)
	if heading == "" {
		return nil
	}
	fmt.Fprintf(w, "\n%s\n", heading)
	return printDetails(w, rows)
}

package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"go/version"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// imageTarget is a final stage of the Dockerfile: the image of one binary.
type imageTarget struct {
	name string   // the stage, the binary and the image are named alike
	help []string // arguments before -h that list the -http-addr flag
}

// imageTargets are the images `make images` builds.
func imageTargets() []imageTarget {
	return []imageTarget{
		{name: "ingest"},
		{name: "store"},
		{name: "query"},
		{name: "notifier"},
		{name: "eventsync", help: []string{"run"}},
	}
}

// testVersion is the VERSION build argument of the test builds.
const testVersion = "1.2.3-test"

// instruction is one Dockerfile instruction.
type instruction struct {
	cmd   string   // lower case: from, run, copy, env, …
	args  []string // for ENV and LABEL: key, value, "=" triples
	flags []string // --from=…, --mount=…
	json  bool     // exec form: ["a", "b"]
	line  int
}

// flag returns the value of the flag --name=value.
func (in instruction) flag(name string) (string, bool) {
	for _, f := range in.flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// stage is a build stage: FROM base AS name and what follows it.
type stage struct {
	name   string
	base   string
	line   int
	instrs []instruction
}

// dockerfile is the parsed Dockerfile at the repository root.
type dockerfile struct {
	stages []stage
}

// repoRoot returns the repository root: the build context.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: %s", w.Short)
	}
	var d dockerfile
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"], line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		if in.cmd != "from" {
			if len(d.stages) == 0 {
				t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			s := &d.stages[len(d.stages)-1]
			s.instrs = append(s.instrs, in)
			continue
		}
		s := stage{line: in.line}
		switch {
		case len(in.args) == 1:
			s.base = in.args[0]
		case len(in.args) == 3 && strings.EqualFold(in.args[1], "AS"):
			s.base, s.name = in.args[0], strings.ToLower(in.args[2])
		default:
			t.Fatalf("Dockerfile:%d: FROM %q: want FROM image [AS name]", in.line, in.args)
		}
		d.stages = append(d.stages, s)
	}
	if len(d.stages) == 0 {
		t.Fatal("Dockerfile has no stage")
	}
	return d
}

// stage returns the stage named name.
func (d dockerfile) stage(name string) (stage, bool) {
	for _, s := range d.stages {
		if s.name != "" && s.name == name {
			return s, true
		}
	}
	return stage{}, false
}

// chain returns the stages that stage name builds on, from the one whose
// base is an image to the named one itself.
func (d dockerfile) chain(t *testing.T, name string) []stage {
	t.Helper()
	var out []stage
	for {
		s, ok := d.stage(name)
		if !ok {
			t.Fatalf("Dockerfile: no stage %q", name)
		}
		if slices.ContainsFunc(out, func(o stage) bool { return o.name == s.name }) {
			t.Fatalf("Dockerfile: stage %q builds on itself", name)
		}
		out = append([]stage{s}, out...)
		if _, ok := d.stage(s.base); !ok {
			return out
		}
		name = s.base
	}
}

// pinned reports whether an image reference names a fixed release: a
// digest, or a tag other than latest with a version number in it or, for
// variant tags such as distroless's nonroot, in the image's name
// (static-debian12:nonroot).
func pinned(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	repo, tag, ok := strings.Cut(path.Base(ref), ":")
	if !ok || tag == "" || tag == "latest" {
		return false
	}
	const digits = "0123456789"
	return strings.ContainsAny(tag, digits) || strings.ContainsAny(repo, digits)
}

func TestPinned(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"golang:1.26-bookworm", true},
		{"gcr.io/distroless/static-debian12:nonroot", true},
		{"nats:2.15.2-alpine", true},
		{"clickhouse/clickhouse-server:25.8", true},
		{"alpine@sha256:0123456789abcdef", true},
		{"golang", false},
		{"golang:latest", false},
		{"golang:bookworm", false},
		{"gcr.io/distroless/static:nonroot", false},
		{"registry.example.com:5000/eventsync/ingest", false},
		{"nats:", false},
	}
	for _, tt := range tests {
		if got := pinned(tt.ref); got != tt.want {
			t.Errorf("pinned(%q) = %v; want %v", tt.ref, got, tt.want)
		}
	}
}

// goDirectives returns the go directive of every module the images build
// from, by module directory.
func goDirectives(t *testing.T) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^go (\S+)$`)
	out := map[string]string{}
	for _, dir := range []string{"pkg", "services/ingest", "services/store", "services/query", "services/notifier", "cmd/eventsync"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s/go.mod has no go directive", dir)
		}
		out[dir] = string(m[1])
	}
	return out
}

// golangVersion returns the Go version of a golang image reference
// ("golang:1.26-bookworm" → "go1.26"), or "" if it names none.
func golangVersion(ref string) string {
	m := regexp.MustCompile(`^(?:docker\.io/(?:library/)?)?golang:(1\.\d+(?:\.\d+)?)(?:-|$)`).FindStringSubmatch(ref)
	if m == nil {
		return ""
	}
	return "go" + m[1]
}

func TestDockerfileStages(t *testing.T) {
	d := readDockerfile(t)
	names := map[string]bool{}
	for _, s := range d.stages {
		if s.name != "" && names[s.name] {
			t.Errorf("Dockerfile:%d: a second stage named %q", s.line, s.name)
		}
		names[s.name] = true
		if _, ok := d.stage(s.base); !ok && !pinned(s.base) {
			t.Errorf("Dockerfile:%d: FROM %s: not a pinned image (a version tag or a digest; never latest)", s.line, s.base)
		}
	}
	if last := d.stages[len(d.stages)-1].name; last != "eventsync" {
		t.Errorf("the last stage (what a build without --target produces) is %q; want eventsync", last)
	}

	for _, it := range imageTargets() {
		t.Run(it.name, func(t *testing.T) {
			final, ok := d.stage(it.name)
			if !ok {
				t.Fatalf("no stage %q: docker build --target %s fails", it.name, it.name)
			}
			if !strings.HasPrefix(final.base, "gcr.io/distroless/static") && final.base != "scratch" {
				t.Errorf("stage %s is FROM %s; want a distroless static base (or scratch)", it.name, final.base)
			}
			checkFinalStage(t, it.name, final)

			var from string
			for _, in := range final.instrs {
				if in.cmd == "copy" {
					if f, ok := in.flag("from"); ok && len(in.args) == 2 && in.args[1] == "/usr/local/bin/"+it.name {
						from = f
					}
				}
			}
			if from == "" {
				t.Fatalf("stage %s copies no binary to /usr/local/bin/%s", it.name, it.name)
			}
			checkBuildChain(t, d.chain(t, from))
		})
	}
}

// checkFinalStage checks the image stage of binary name: a numeric
// non-root user (Kubernetes' runAsNonRoot can verify only a number), the
// binary as exec-form entrypoint, and ports exposed.
func checkFinalStage(t *testing.T, name string, s stage) {
	t.Helper()
	user, entrypoint, exposed := "", []string(nil), false
	for _, in := range s.instrs {
		switch in.cmd {
		case "user":
			user = in.args[0]
		case "entrypoint":
			if !in.json {
				t.Errorf("Dockerfile:%d: ENTRYPOINT in shell form; a distroless image has no shell", in.line)
			}
			entrypoint = in.args
		case "expose":
			exposed = len(in.args) > 0
		case "run":
			t.Errorf("Dockerfile:%d: RUN in the %s image: a distroless image has no shell", in.line, name)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid != "65532" {
		t.Errorf("stage %s runs as USER %q; want 65532 (distroless nonroot, numeric)", name, user)
	}
	if want := []string{"/usr/local/bin/" + name}; !slices.Equal(entrypoint, want) {
		t.Errorf("stage %s has ENTRYPOINT %q; want %q", name, entrypoint, want)
	}
	if !exposed {
		t.Errorf("stage %s exposes no port", name)
	}
}

// checkBuildChain checks the stages that compile a binary: a golang base
// at least as new as every module's go directive, GOWORK=off and
// CGO_ENABLED=0, and a go build with -trimpath whose version stamp comes
// from a VERSION argument declared in its stage.
func checkBuildChain(t *testing.T, chain []stage) {
	t.Helper()
	goVersion := golangVersion(chain[0].base)
	if goVersion == "" {
		t.Fatalf("the build starts FROM %s; want a golang image", chain[0].base)
	}
	for dir, directive := range goDirectives(t) {
		need := "go" + directive
		if strings.Count(goVersion, ".") == 1 { // a minor-version tag: its newest patch release
			need = version.Lang(need)
		}
		if version.Compare(goVersion, need) < 0 {
			t.Errorf("FROM %s: %s/go.mod needs go %s", chain[0].base, dir, directive)
		}
	}
	env := map[string]string{}
	builds := 0
	for _, s := range chain {
		args := map[string]bool{}
		for _, in := range s.instrs {
			switch in.cmd {
			case "env":
				for i := 0; i+1 < len(in.args); i += 3 {
					env[in.args[i]] = in.args[i+1]
				}
			case "arg":
				name, _, _ := strings.Cut(in.args[0], "=")
				args[name] = true
			case "run":
				cmd := strings.Join(in.args, " ")
				if !strings.Contains(cmd, "go build") {
					continue
				}
				builds++
				if !strings.Contains(cmd, " -trimpath") {
					t.Errorf("Dockerfile:%d: go build without -trimpath", in.line)
				}
				if !strings.Contains(cmd, "-X main.version=${VERSION}") {
					t.Errorf("Dockerfile:%d: go build does not stamp -X main.version=${VERSION}", in.line)
				}
				if !args["VERSION"] {
					t.Errorf("Dockerfile:%d: ${VERSION} is empty: the stage declares no ARG VERSION before it", in.line)
				}
			}
		}
	}
	if builds != 1 {
		t.Errorf("stage %s runs go build %d times; want once", chain[len(chain)-1].name, builds)
	}
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("stage %s builds with CGO_ENABLED=%q; want 0 (static binaries for a base without libc)", chain[len(chain)-1].name, env["CGO_ENABLED"])
	}
	if env["GOWORK"] != "off" {
		t.Errorf("stage %s builds with GOWORK=%q; want off (go.work lists ./deploy, which the context leaves out)", chain[len(chain)-1].name, env["GOWORK"])
	}
}

// dockerignore returns the matcher of .dockerignore.
func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf("read .dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	return pm
}

func TestDockerignore(t *testing.T) {
	pm := dockerignore(t)
	tests := []struct {
		path string
		want bool // excluded
	}{
		{".git/config", true},
		{"bin/ingest", true},
		{"data/events.db", true},
		{"cmd/eventsync/data/nats/jetstream", true},
		{"cmd/eventsync/eventsync", true},
		{"services/ingest/cmd/ingest/ingest", true},
		{"pkg/event/testdata/published.json", true},
		{"pkg/event/event_test.go", true},
		{"deploy/k8s/base/ingest.yaml", true},
		{"deploy/go.mod", true},
		{".env", true},
		{"README.md", true},
		{"pkg/go.mod", false},
		{"pkg/event/event.go", false},
		{"services/ingest/cmd/ingest/main.go", false},
		{"services/store/go.sum", false},
		{"cmd/eventsync/main.go", false},
	}
	for _, tt := range tests {
		got, err := pm.MatchesOrParentMatches(tt.path)
		if err != nil || got != tt.want {
			t.Errorf("excluded(%q) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

// buildContext is a stand-in for the files a stage chain sees: the
// instructions' absolute paths live under root.
type buildContext struct {
	repo, root string
	ignore     *patternmatcher.PatternMatcher
}

// copyFromContext carries out COPY src... dst from the build context, as
// BuildKit would: a missing or .dockerignore'd source fails; a directory's
// contents are copied without its excluded files.
func (c buildContext) copyFromContext(workdir string, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("COPY %q: want sources and a destination", args)
	}
	srcs, dst := args[:len(args)-1], args[len(args)-1]
	if !path.IsAbs(dst) {
		dst = path.Join(workdir, dst)
	}
	dst = filepath.Join(c.root, filepath.FromSlash(dst))
	for _, src := range srcs {
		rel := path.Clean(src)
		if excluded, err := c.ignore.MatchesOrParentMatches(rel); err != nil || excluded {
			return fmt.Errorf("COPY %s: excluded by .dockerignore", src)
		}
		from := filepath.Join(c.repo, filepath.FromSlash(rel))
		info, err := os.Stat(from)
		if err != nil {
			return fmt.Errorf("COPY %s: %w", src, err)
		}
		if !info.IsDir() {
			to := dst
			if len(srcs) > 1 || strings.HasSuffix(args[len(args)-1], "/") {
				to = filepath.Join(dst, filepath.Base(from))
			}
			if err := copyFile(from, to); err != nil {
				return err
			}
			continue
		}
		err = filepath.WalkDir(from, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, err := filepath.Rel(c.repo, p)
			if err != nil {
				return err
			}
			excluded, err := c.ignore.MatchesOrParentMatches(filepath.ToSlash(r))
			switch {
			case err != nil:
				return err
			case excluded && e.IsDir():
				return filepath.SkipDir
			case excluded || e.IsDir():
				return nil
			}
			inside, err := filepath.Rel(from, p)
			if err != nil {
				return err
			}
			return copyFile(p, filepath.Join(dst, inside))
		})
		if err != nil {
			return fmt.Errorf("COPY %s: %w", src, err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// hostPath maps an absolute path of the Dockerfile's build onto root.
func (c buildContext) hostPath(p string) string {
	return filepath.Join(c.root, filepath.FromSlash(p))
}

// run carries out the chain's instructions that make the build's files:
// WORKDIR, ENV, ARG (with buildArgs), COPY from the context and RUN, the
// last with sh -c as BuildKit does. Paths under /out/ are mapped onto
// root.
func (c buildContext) run(t *testing.T, chain []stage, buildArgs map[string]string) {
	t.Helper()
	lex := shell.NewLex('\\')
	env := map[string]string{}
	workdir := "/"
	for _, s := range chain {
		args := map[string]string{} // ARGs end with their stage
		vars := func() shell.EnvGetter {
			var kv []string
			for k, v := range args {
				kv = append(kv, k+"="+v)
			}
			for k, v := range env { // ENV wins over ARG
				kv = append(kv, k+"="+v)
			}
			return shell.EnvsFromSlice(kv)
		}
		for _, in := range s.instrs {
			switch in.cmd {
			case "workdir":
				workdir = path.Join(workdir, in.args[0])
			case "env":
				for i := 0; i+1 < len(in.args); i += 3 {
					v, _, err := lex.ProcessWord(in.args[i+1], vars())
					if err != nil {
						t.Fatalf("Dockerfile:%d: ENV %s: %v", in.line, in.args[i], err)
					}
					env[in.args[i]] = v
				}
			case "arg":
				name, def, _ := strings.Cut(in.args[0], "=")
				if v, ok := buildArgs[name]; ok {
					def = v
				}
				args[name] = def
			case "copy":
				if _, ok := in.flag("from"); ok {
					t.Fatalf("Dockerfile:%d: COPY --from in a build stage is not simulated", in.line)
				}
				if err := c.copyFromContext(workdir, in.args); err != nil {
					t.Fatalf("Dockerfile:%d: %v", in.line, err)
				}
			case "run":
				script := strings.Join(in.args, " ")
				if in.json {
					t.Fatalf("Dockerfile:%d: RUN in exec form is not simulated", in.line)
				}
				script = strings.ReplaceAll(script, "/out/", c.hostPath("/out")+"/")
				dir := c.hostPath(workdir)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("sh", "-c", script)
				cmd.Dir = dir
				cmd.Env = os.Environ()
				for _, kv := range []map[string]string{args, env} {
					for k, v := range kv {
						cmd.Env = append(cmd.Env, k+"="+v)
					}
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("Dockerfile:%d: RUN %s: %v\n%s", in.line, script, err, out)
				}
			}
		}
	}
}

// imageEnv returns the environment the final stage sets, as KEY=value.
func imageEnv(s stage) []string {
	var env []string
	for _, in := range s.instrs {
		if in.cmd == "env" {
			for i := 0; i+1 < len(in.args); i += 3 {
				env = append(env, in.args[i]+"="+in.args[i+1])
			}
		}
	}
	return env
}

// exposed returns the ports a stage exposes.
func exposed(s stage) []string {
	var ports []string
	for _, in := range s.instrs {
		if in.cmd == "expose" {
			for _, p := range in.args {
				port, _, _ := strings.Cut(p, "/")
				ports = append(ports, port)
			}
		}
	}
	return ports
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestDockerfileBuild builds every image's binary the way the Dockerfile
// does, from a copy of what its COPY instructions take from the build
// context after .dockerignore, by running its RUN instructions; then runs
// the binaries: the version stamp, the exposed port, and the healthcheck
// mode against nothing and against ready servers.
func TestDockerfileBuild(t *testing.T) {
	d := readDockerfile(t)
	var (
		roots = t.TempDir() // outlives the build subtests: "ready" runs the binaries
		mu    sync.Mutex
		bins  = map[string]string{}
	)
	t.Run("build", func(t *testing.T) {
		for _, it := range imageTargets() {
			t.Run(it.name, func(t *testing.T) {
				t.Parallel()
				final, ok := d.stage(it.name)
				if !ok {
					t.Fatalf("no stage %q", it.name)
				}
				// A matcher each: one compiles its patterns lazily, unsafe for concurrent use.
				c := buildContext{repo: repoRoot(t), root: filepath.Join(roots, it.name), ignore: dockerignore(t)}
				var bin string
				for _, in := range final.instrs {
					from, ok := in.flag("from")
					if in.cmd != "copy" || !ok {
						continue
					}
					c.run(t, d.chain(t, from), map[string]string{"VERSION": testVersion})
					if !strings.HasPrefix(in.args[0], "/out/") {
						t.Fatalf("Dockerfile:%d: COPY --from=%s %s: the builds write to /out/", in.line, from, in.args[0])
					}
					if _, err := os.Stat(c.hostPath(in.args[0])); err != nil {
						t.Fatalf("Dockerfile:%d: COPY --from=%s %s: the stage did not make it: %v", in.line, from, in.args[0], err)
					}
					if in.args[1] == "/usr/local/bin/"+it.name {
						bin = c.hostPath(in.args[0])
					}
				}
				checkContext(t, c.hostPath("/src"))
				checkBinary(t, it, final, bin)
				mu.Lock()
				bins[it.name] = bin
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	t.Run("ready", func(t *testing.T) { checkReady(t, bins) })
}

// checkContext checks what the build copied from the context: no tests,
// no built binaries or data (nothing over 1 MiB).
func checkContext(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasSuffix(p, "_test.go") {
			t.Errorf("the build context holds the test %s", rel)
		}
		if info.Size() > 1<<20 {
			t.Errorf("the build context holds %s of %d bytes: a binary or data .dockerignore should leave out", rel, info.Size())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkBinary runs an image's binary with the image's environment: it is
// static, prints the stamped version, listens by default on an exposed
// port, and its healthcheck fails with exit status 1 when nothing listens.
func checkBinary(t *testing.T, it imageTarget, final stage, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked; the distroless static base has no C library", it.name)
		}
	}
	f.Close()

	env := imageEnv(final)
	out, err := command(bin, env, "version").Output()
	if want := it.name + " " + testVersion + "\n"; err != nil || string(out) != want {
		t.Errorf("%s version = %q, %v; want %q", it.name, out, err, want)
	}

	help, _ := command(bin, env, append(it.help, "-h")...).CombinedOutput() // -h exits 2
	m := regexp.MustCompile(`-http-addr string\n.*\(default "([^"]*)"\)`).FindSubmatch(help)
	if m == nil {
		t.Fatalf("%s %s -h lists no -http-addr default:\n%s", it.name, strings.Join(it.help, " "), help)
	}
	_, port, err := net.SplitHostPort(string(m[1]))
	if err != nil || !slices.Contains(exposed(final), port) {
		t.Errorf("%s listens on %q by default; want a port the image exposes, %q", it.name, m[1], exposed(final))
	}

	down := freeAddr(t)
	cmd := command(bin, append(env, "HTTP_ADDR="+down), "healthcheck")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("%s healthcheck with nothing on %s = %v; want exit status 1", it.name, down, err)
	}
	if !strings.Contains(stderr.String(), down) {
		t.Errorf("%s healthcheck printed %q; want the address it probed, %s", it.name, stderr.String(), down)
	}
}

// command returns bin with args and exactly env as its environment, as in
// a container.
func command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	return cmd
}

// checkReady starts the all-in-one, and ingest and notifier against its
// NATS server, and waits for each one's healthcheck mode to pass.
func checkReady(t *testing.T, bins map[string]string) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hung start fails instead of blocking
	defer cancel()
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	p := start(t, bins["eventsync"], []string{"HTTP_ADDR=" + httpAddr, "NATS_ADDR=" + natsAddr, "DATA_DIR=" + t.TempDir(), "LOG_LEVEL=warn"}, "run")
	p.waitHealthy(ctx, t, httpAddr)

	natsURL := "NATS_URL=nats://" + natsAddr
	for _, svc := range []struct {
		name string
		env  []string
	}{
		{"ingest", []string{natsURL, "ADMIN_TOKEN=secret", "LOG_LEVEL=warn"}},
		{"notifier", []string{natsURL, "ADMIN_TOKEN=secret", "LOG_LEVEL=warn"}},
	} {
		addr := freeAddr(t)
		p := start(t, bins[svc.name], append(svc.env, "HTTP_ADDR="+addr))
		p.waitHealthy(ctx, t, addr)
	}
}

// process is a binary running for a test.
type process struct {
	bin  string
	out  bytes.Buffer  // read only once done is closed
	done chan struct{} // closed when it has exited
	err  error         // how it exited
}

// start runs bin until the test ends, then stops it as a container runtime
// does, with SIGTERM, and expects a clean exit.
func start(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{bin: bin, done: make(chan struct{})}
	cmd := command(bin, env, args...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
		switch {
		case p.err != nil:
			t.Errorf("%s stopped with %v:\n%s", filepath.Base(bin), p.err, p.out.String())
		case t.Failed():
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.out.String())
		}
	})
	return p
}

// waitHealthy runs the healthcheck mode of p's binary against addr until
// it passes; p exiting first fails the test.
func (p *process) waitHealthy(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	name := filepath.Base(p.bin)
	for {
		out, err := command(p.bin, []string{"HTTP_ADDR=" + addr}, "healthcheck").CombinedOutput()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before its healthcheck passed:\n%s", name, p.err, p.out.String())
		case <-ctx.Done():
			t.Fatalf("%s healthcheck on %s never passed: %v\n%s", name, addr, err, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

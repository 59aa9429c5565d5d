// Package conf reads configuration the way every EventSync command does:
// a flag wins over its environment variable, which wins over the default.
// Help output lists every flag with its variable.
package conf

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"
)

// Set is a flag set whose defaults come from the environment.
type Set struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// New returns a Set for the named command; help goes to out.
func New(name string, getenv func(string) string, out io.Writer) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return &Set{fs: fs, getenv: getenv}
}

// FlagSet exposes the underlying flag set, e.g. for positional arguments.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

func (s *Set) env(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	v := s.getenv(name)
	return v, v != ""
}

func usage(u, env string) string {
	if env == "" {
		return u
	}
	return u + " [$" + env + "]"
}

// String defines a string setting.
func (s *Set) String(p *string, name, env, def, help string) {
	if v, ok := s.env(env); ok {
		def = v
	}
	s.fs.StringVar(p, name, def, usage(help, env))
}

// Int defines an integer setting.
func (s *Set) Int(p *int, name, env string, def int, help string) {
	if v, ok := s.env(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("$%s: %q is not an integer", env, v))
		} else {
			def = n
		}
	}
	s.fs.IntVar(p, name, def, usage(help, env))
}

// Int64 defines a 64-bit integer setting.
func (s *Set) Int64(p *int64, name, env string, def int64, help string) {
	if v, ok := s.env(env); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("$%s: %q is not an integer", env, v))
		} else {
			def = n
		}
	}
	s.fs.Int64Var(p, name, def, usage(help, env))
}

// Float64 defines a floating-point setting.
func (s *Set) Float64(p *float64, name, env string, def float64, help string) {
	if v, ok := s.env(env); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("$%s: %q is not a number", env, v))
		} else {
			def = f
		}
	}
	s.fs.Float64Var(p, name, def, usage(help, env))
}

// Duration defines a duration setting (Go syntax: 200ms, 10s, 168h).
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, help string) {
	if v, ok := s.env(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("$%s: %q is not a duration", env, v))
		} else {
			def = d
		}
	}
	s.fs.DurationVar(p, name, def, usage(help, env))
}

// Bool defines a boolean setting.
func (s *Set) Bool(p *bool, name, env string, def bool, help string) {
	if v, ok := s.env(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("$%s: %q is not a boolean", env, v))
		} else {
			def = b
		}
	}
	s.fs.BoolVar(p, name, def, usage(help, env))
}

// Var defines a setting of any type that implements flag.Value; the
// value's current contents are the default.
func (s *Set) Var(v flag.Value, name, env, help string) {
	if e, ok := s.env(env); ok {
		if err := v.Set(e); err != nil {
			s.errs = append(s.errs, fmt.Errorf("$%s: %w", env, err))
		}
	}
	s.fs.Var(v, name, usage(help, env))
}

// Parse parses the flags and returns every problem found in the
// environment and on the command line. flag.ErrHelp means help was printed.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	return errors.Join(s.errs...)
}

// NewLogger returns the JSON logger of a command at the named level
// (debug, info, warn, error).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

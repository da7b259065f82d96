package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// settings binds command-line flags to environment variables. The precedence is: a flag
// given on the command line, else its environment variable (when set and non-empty), else
// the default.
type settings struct {
	fs     *flag.FlagSet
	getenv func(string) string
	// envOf maps a flag name to its environment variable ("" for flag-only settings).
	envOf map[string]string
	order []string
	// source records where each flag's value came from after parse: "flag", "env" or "default".
	source map[string]string
	// args are the positional arguments, wherever they stood among the flags.
	args []string
	// after run once parse has filled every setting (e.g. the eligo dev context lookup).
	after []func()
	// notes hears what the after hooks have to say (the command's stderr); nil discards.
	notes io.Writer
}

func newSettings(name string, getenv func(string) string) *settings {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usage is printed by the command, to the right stream
	return &settings{fs: fs, getenv: getenv, envOf: map[string]string{}, source: map[string]string{}}
}

func (s *settings) add(name, env string) {
	s.envOf[name] = env
	s.order = append(s.order, name)
}

func envUsage(usage, env string) string {
	if env == "" {
		return usage
	}
	return usage + " (env " + env + ")"
}

// str binds a string setting.
func (s *settings) str(p *string, name, env, def, usage string) {
	s.fs.StringVar(p, name, def, envUsage(usage, env))
	s.add(name, env)
}

// duration binds a time.Duration setting.
func (s *settings) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	s.fs.DurationVar(p, name, def, envUsage(usage, env))
	s.add(name, env)
}

// integer binds an int setting.
func (s *settings) integer(p *int, name, env string, def int, usage string) {
	s.fs.IntVar(p, name, def, envUsage(usage, env))
	s.add(name, env)
}

// number binds a float64 setting.
func (s *settings) number(p *float64, name, env string, def float64, usage string) {
	s.fs.Float64Var(p, name, def, envUsage(usage, env))
	s.add(name, env)
}

// boolean binds a bool setting.
func (s *settings) boolean(p *bool, name, env string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, envUsage(usage, env))
	s.add(name, env)
}

// parse parses args, then fills every flag that was not given from its environment
// variable. It returns errHelp for -h/--help, and a usageError for bad flags or values.
func (s *settings) parse(args []string) error {
	for {
		if err := s.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelp
			}
			return usageError{err}
		}
		rest := s.fs.Args()
		if len(rest) == 0 {
			break
		}
		// Positional arguments may come before flags ("dlq show 12 --json").
		s.args = append(s.args, rest[0])
		args = rest[1:]
	}
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for _, name := range s.order {
		switch {
		case given[name]:
			s.source[name] = "flag"
			continue
		case s.envOf[name] == "":
			s.source[name] = "default"
			continue
		}
		env := s.envOf[name]
		v := s.getenv(env)
		if v == "" {
			s.source[name] = "default"
			continue
		}
		if err := s.fs.Set(name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not valid (%s): fix the variable or pass --%s", env, v, unwrapFlagErr(err), name))
			continue
		}
		s.source[name] = "env"
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	for _, f := range s.after {
		f()
	}
	return nil
}

// notesWriter is where parse hooks write notes for the user.
func (s *settings) notesWriter() io.Writer {
	if s.notes == nil {
		return io.Discard
	}
	return s.notes
}

func unwrapFlagErr(err error) string {
	if ne := (*strconv.NumError)(nil); errors.As(err, &ne) {
		return ne.Err.Error()
	}
	return err.Error()
}

// required reports a missing setting in words that say how to fix it.
func (s *settings) required(name, what string) error {
	if env := s.envOf[name]; env != "" {
		return fmt.Errorf("%s is required: set %s or pass --%s", what, env, name)
	}
	return fmt.Errorf("%s is required: pass --%s", what, name)
}

// invalid reports a bad value of a setting, naming both ways to set it.
func (s *settings) invalid(name, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if env := s.envOf[name]; env != "" {
		return fmt.Errorf("%s / --%s: %s", env, name, msg)
	}
	return fmt.Errorf("--%s: %s", name, msg)
}

// fileReadable checks that the file named by setting name exists and can be read. It never
// reads the content into an error (the file may hold a secret).
func (s *settings) fileReadable(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return s.invalid(name, "cannot read %s: %v", path, err)
	}
	f.Close()
	return nil
}

// printUsage writes the command's help: a synopsis, a description and its flags.
func (s *settings) printUsage(w io.Writer, synopsis, description string) {
	fmt.Fprintf(w, "Usage: %s\n\n", synopsis)
	if description != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(description))
	}
	var names []string
	s.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	fmt.Fprintln(w, "Flags (a flag overrides its environment variable):")
	for _, n := range names {
		f := s.fs.Lookup(n)
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + n
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintln(w, line)
		usage = strings.ReplaceAll(usage, "\n", "\n        ")
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			usage += fmt.Sprintf(" [default %s]", f.DefValue)
		}
		fmt.Fprintf(w, "        %s\n", usage)
	}
}

// errHelp is returned by parse when help was asked for; commands print their usage to stdout
// and succeed.
var errHelp = errors.New("help requested")

// usageError is a mistake in how the command was called; main exits with status 2 for it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

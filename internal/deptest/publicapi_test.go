package deptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPublicAPIHasNoInternalTypes: no exported identifier of a public
// package (every package of the module outside internal/, cmd/ and bench/,
// but for commands) mentions a type of an internal package, so a program
// in another module can use all of it (the compiler refuses to let it
// import an internal package). Type aliases count: their target is what
// users get.
func TestPublicAPIHasNoInternalTypes(t *testing.T) {
	t.Parallel()
	bad := internalMentions(t, "../..", "./...", []string{mod + "/cmd", mod + "/bench"})
	for _, b := range bad {
		t.Error(b)
	}
}

// TestInternalMentionsFinds runs the check on a module made to break it
// in every way it knows, so that the test above cannot pass by missing
// what it looks for.
func TestInternalMentionsFinds(t *testing.T) {
	t.Parallel()
	got := internalMentions(t, "testdata/apicheck", "./...", nil)
	want := []string{
		"example.com/apicheck/pub.Alias is example.com/apicheck/internal/in.T",
		"example.com/apicheck/pub.Embeds.T: example.com/apicheck/internal/in.T",
		"example.com/apicheck/pub.Field.X: *example.com/apicheck/internal/in.T",
		"example.com/apicheck/pub.Func: func(map[string][]example.com/apicheck/internal/in.T)",
		"example.com/apicheck/pub.Generic: example.com/apicheck/pub.Box[example.com/apicheck/internal/in.T]",
		"example.com/apicheck/pub.Iface.M: func() example.com/apicheck/internal/in.T",
		"example.com/apicheck/pub.Opt: func(*example.com/apicheck/internal/in.T) error",
		"example.com/apicheck/pub.Value.M: func(example.com/apicheck/internal/in.T)",
		"example.com/apicheck/pub.Var: example.com/apicheck/internal/in.T",
		"example.com/apicheck/pub.hidden (via example.com/apicheck/pub.Leak).Exposed: example.com/apicheck/internal/in.T",
	}
	if !slices.Equal(got, want) {
		t.Errorf("found:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// internalMentions type-checks nothing itself: it reads the export data
// of the non-main packages that pattern names in the module at dir (minus
// those under skip) and returns, sorted, each exported identifier whose
// type reaches a named type of an internal package, with that type.
func internalMentions(t *testing.T, dir, pattern string, skip []string) []string {
	t.Helper()
	list := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Name,Export,Module", pattern)
	list.Dir = dir
	list.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -export in %s: %v\n%s", dir, err, stderr.String())
	}
	main, err := exec.Command("go", "-C", dir, "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m in %s: %v", dir, err)
	}
	module := strings.TrimSpace(string(main))
	exports := map[string]string{}
	var public []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath, Name, Export string
			Module                   *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module == nil || p.Module.Path != module || p.Name == "main" || isInternal(p.ImportPath) ||
			slices.ContainsFunc(skip, func(s string) bool { return under(p.ImportPath, s) }) {
			continue
		}
		public = append(public, p.ImportPath)
	}
	if len(public) == 0 {
		t.Fatalf("no public packages in %s", dir)
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		if f := exports[path]; f != "" {
			return os.Open(filepath.Clean(f))
		}
		return nil, fmt.Errorf("no export data for %s", path)
	})
	c := &apiChecker{module: module, seen: map[types.Type]bool{}}
	for _, path := range public {
		pkg, err := imp.Import(path)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		for _, name := range pkg.Scope().Names() {
			if obj := pkg.Scope().Lookup(name); obj.Exported() {
				c.decl(path+"."+name, obj)
			}
		}
	}
	slices.Sort(c.bad)
	return slices.Compact(c.bad)
}

// isInternal reports whether path is an internal package.
func isInternal(path string) bool {
	return strings.HasSuffix(path, "/internal") || strings.Contains(path, "/internal/") || strings.HasPrefix(path, "internal/")
}

// apiChecker walks what users of a package can reach from its exported
// identifiers.
type apiChecker struct {
	module string
	seen   map[types.Type]bool
	bad    []string
}

// decl checks an exported declaration.
func (c *apiChecker) decl(where string, obj types.Object) {
	tn, ok := obj.(*types.TypeName)
	if !ok {
		c.typ(where, obj.Type())
		return
	}
	if tn.IsAlias() {
		if named := c.internalNamed(types.Unalias(tn.Type())); named != nil {
			c.bad = append(c.bad, fmt.Sprintf("%s is %s", where, types.TypeString(named, nil)))
			return
		}
		c.typ(where, types.Unalias(tn.Type()))
		return
	}
	if named, ok := tn.Type().(*types.Named); ok {
		c.seen[named] = true
		c.members(where, named)
	}
}

// members checks a named type of the module: its type parameters, its
// underlying type and its exported methods.
func (c *apiChecker) members(where string, named *types.Named) {
	for tp := range named.TypeParams().TypeParams() {
		c.typ(where, tp.Constraint())
	}
	c.typ(where, named.Underlying())
	for m := range named.Methods() {
		if m.Exported() {
			c.typ(where+"."+m.Name(), m.Type())
		}
	}
}

// internalNamed returns t when it is a named type of an internal package.
func (c *apiChecker) internalNamed(t types.Type) *types.Named {
	if n, ok := t.(*types.Named); ok && n.Obj().Pkg() != nil && isInternal(n.Obj().Pkg().Path()) {
		return n
	}
	return nil
}

// typ reports where when t reaches a type of an internal package through
// what users can see: element and parameter types, exported fields and
// methods, type arguments, and the members of unexported types of the
// module that an exported identifier hands out.
func (c *apiChecker) typ(where string, t types.Type) {
	if named := c.internalNamed(types.Unalias(t)); named != nil || c.mentions(t) {
		c.bad = append(c.bad, fmt.Sprintf("%s: %s", where, types.TypeString(t, nil)))
		return
	}
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		if c.seen[t] || t.Obj().Pkg() == nil || !under(t.Obj().Pkg().Path(), c.module) {
			return
		}
		c.seen[t] = true
		if !t.Obj().Exported() { // exported ones are checked where they are declared
			c.members(fmt.Sprintf("%s (via %s)", t.Obj().Pkg().Path()+"."+t.Obj().Name(), where), t)
		}
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() || f.Embedded() {
				c.typ(where+"."+f.Name(), f.Type())
			}
		}
	case *types.Interface:
		for m := range t.Methods() {
			if m.Exported() {
				c.typ(where+"."+m.Name(), m.Type())
			}
		}
	case *types.Pointer:
		c.typ(where, t.Elem())
	case *types.Slice:
		c.typ(where, t.Elem())
	case *types.Array:
		c.typ(where, t.Elem())
	case *types.Chan:
		c.typ(where, t.Elem())
	case *types.Map:
		c.typ(where, t.Key())
		c.typ(where, t.Elem())
	case *types.Signature:
		for v := range t.Params().Variables() {
			c.typ(where, v.Type())
		}
		for v := range t.Results().Variables() {
			c.typ(where, v.Type())
		}
	}
}

// mentions reports whether t is built of an internal named type without
// passing through a named type of its own (such as []*in.T or func(in.T)),
// so that the message shows the whole type; named types, fields and
// methods are followed by typ.
func (c *apiChecker) mentions(t types.Type) bool {
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		if c.internalNamed(t) != nil {
			return true
		}
		for a := range t.TypeArgs().Types() {
			if c.mentions(a) {
				return true
			}
		}
	case *types.Pointer:
		return c.mentions(t.Elem())
	case *types.Slice:
		return c.mentions(t.Elem())
	case *types.Array:
		return c.mentions(t.Elem())
	case *types.Chan:
		return c.mentions(t.Elem())
	case *types.Map:
		return c.mentions(t.Key()) || c.mentions(t.Elem())
	case *types.Signature:
		for v := range t.Params().Variables() {
			if c.mentions(v.Type()) {
				return true
			}
		}
		for v := range t.Results().Variables() {
			if c.mentions(v.Type()) {
				return true
			}
		}
	}
	return false
}

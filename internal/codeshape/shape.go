// Package codeshape measures the shape of the service's code: how long
// each function is and how deeply its control structures nest. Its test
// holds the service packages to the limits the house style sets (a reader
// should see a function whole and follow it without a stack of their own).
package codeshape

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Func is one function's shape.
type Func struct {
	Pos   string // file:line
	Name  string // Recv.Name or Name
	Lines int
	Depth int    // deepest nesting of if/for/switch/select/func literals
	Doc   string // its doc comment
}

// Measure reads every non-test Go file of dir (one package).
func Measure(dir string) ([]Func, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Func
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) > 0 {
				name = recvName(fd.Recv.List[0].Type) + "." + name
			}
			start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
			out = append(out, Func{Pos: start.Filename + ":" + strconv.Itoa(start.Line), Name: name, Lines: end.Line - start.Line + 1,
				Depth: depth(fd.Body, 0), Doc: fd.Doc.Text()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos < out[j].Pos })
	return out, nil
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}

// depth is the deepest nesting below n, at level d. An else-if chain is one
// level, as a reader sees it; a case clause is part of its switch.
func depth(n ast.Node, d int) int {
	deepest := d
	visit := func(c ast.Node, at int) {
		if c == nil {
			return
		}
		if v := depth(c, at); v > deepest {
			deepest = v
		}
	}
	if s, ok := n.(*ast.IfStmt); ok {
		visit(s.Body, d+1)
		if elif, ok := s.Else.(*ast.IfStmt); ok {
			visit(elif, d)
		} else if s.Else != nil {
			visit(s.Else, d+1)
		}
		return deepest
	}
	if body := nestedBody(n); body != nil {
		visit(body, d+1)
		return deepest
	}
	ast.Inspect(n, func(c ast.Node) bool {
		if c == n || c == nil {
			return true
		}
		switch c.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt, *ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.SelectStmt, *ast.FuncLit:
			visit(c, d)
			return false
		}
		return true
	})
	return deepest
}

// nestedBody is the body a loop, switch, select or function literal nests.
func nestedBody(n ast.Node) ast.Node {
	switch s := n.(type) {
	case *ast.ForStmt:
		return s.Body
	case *ast.RangeStmt:
		return s.Body
	case *ast.SwitchStmt:
		return s.Body
	case *ast.TypeSwitchStmt:
		return s.Body
	case *ast.SelectStmt:
		return s.Body
	case *ast.FuncLit:
		return s.Body
	}
	return nil
}

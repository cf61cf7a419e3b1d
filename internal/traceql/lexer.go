package traceql

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tLBrace
	tRBrace
	tLParen
	tRParen
	tAnd      // &&
	tOr       // ||
	tDesc     // >>
	tAnc      // <<
	tGt       // >
	tGte      // >=
	tLt       // <
	tLte      // <=
	tEq       // =
	tNeq      // !=
	tRe       // =~
	tNre      // !~
	tSibling  // ~
	tIdent    // name, keywords, attributes such as span.http.method or .foo
	tString   // "..." or `...`
	tNumber   // 12, 1.5, -3
	tDuration // 10ms, 1.5s
	tOther    // any other operator character; always rejected by the parser

	// Union and negated structural operators (!~ is tNre).
	tUnionDesc    // &>>
	tUnionChild   // &>
	tUnionAnc     // &<<
	tUnionParent  // &<
	tUnionSibling // &~
	tNotDesc      // !>>
	tNotChild     // !>
	tNotAnc       // !<<
	tNotParent    // !<
)

type token struct {
	kind tokKind
	text string // raw text for idents, numbers, durations and others; decoded for strings
	pos  int    // byte offset in the query
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tString:
		return fmt.Sprintf("string %q", t.text)
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

// maxQueryLen bounds the input so the lexer and parser do bounded work.
const maxQueryLen = 64 << 10

// isAttrChar reports whether r may appear in an unquoted identifier or
// attribute name. Tempo allows most characters in attribute names; we stop at
// whitespace, quotes and operator characters.
func isAttrChar(r rune) bool {
	if unicode.IsSpace(r) {
		return false
	}
	switch r {
	case '{', '}', '(', ')', '=', '~', '!', '<', '>', '&', '|', '^', ',', '"', '`', '+', '*', '/', '%', '\'':
		return false
	}
	return unicode.IsPrint(r)
}

func lex(q string) ([]token, error) {
	if len(q) > maxQueryLen {
		return nil, fmt.Errorf("query is %d bytes, longer than the limit of %d", len(q), maxQueryLen)
	}
	if !utf8.ValidString(q) {
		return nil, fmt.Errorf("query is not valid UTF-8")
	}
	var toks []token
	i := 0
	for i < len(q) {
		r, w := utf8.DecodeRuneInString(q[i:])
		if unicode.IsSpace(r) {
			i += w
			continue
		}
		start := i
		two := ""
		if i+1 < len(q) {
			two = q[i : i+2]
		}
		emit := func(k tokKind, n int) {
			toks = append(toks, token{kind: k, text: q[start : start+n], pos: start})
			i += n
		}
		three := ""
		if i+2 < len(q) {
			three = q[i : i+3]
		}
		switch {
		case three == "&>>":
			emit(tUnionDesc, 3)
		case three == "&<<":
			emit(tUnionAnc, 3)
		case three == "!>>":
			emit(tNotDesc, 3)
		case three == "!<<":
			emit(tNotAnc, 3)
		case two == "&>":
			emit(tUnionChild, 2)
		case two == "&<":
			emit(tUnionParent, 2)
		case two == "&~":
			emit(tUnionSibling, 2)
		case two == "!>":
			emit(tNotChild, 2)
		case two == "!<":
			emit(tNotParent, 2)
		case two == "&&":
			emit(tAnd, 2)
		case two == "||":
			emit(tOr, 2)
		case two == ">>":
			emit(tDesc, 2)
		case two == "<<":
			emit(tAnc, 2)
		case two == ">=":
			emit(tGte, 2)
		case two == "<=":
			emit(tLte, 2)
		case two == "!=":
			emit(tNeq, 2)
		case two == "=~":
			emit(tRe, 2)
		case two == "!~":
			emit(tNre, 2)
		case r == '{':
			emit(tLBrace, 1)
		case r == '}':
			emit(tRBrace, 1)
		case r == '(':
			emit(tLParen, 1)
		case r == ')':
			emit(tRParen, 1)
		case r == '>':
			emit(tGt, 1)
		case r == '<':
			emit(tLt, 1)
		case r == '=':
			emit(tEq, 1)
		case r == '~':
			emit(tSibling, 1)
		case r == '"' || r == '`':
			s, n, err := lexString(q[i:])
			if err != nil {
				return nil, fmt.Errorf("at position %d: %w", i+1, err)
			}
			toks = append(toks, token{kind: tString, text: s, pos: start})
			i += n
		case r >= '0' && r <= '9', r == '-' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			n, isDur := lexNumber(q[i:])
			k := tNumber
			if isDur {
				k = tDuration
			}
			emit(k, n)
		case r == '.' || unicode.IsLetter(r) || r == '_':
			n := 0
			for n < len(q)-i {
				r2, w2 := utf8.DecodeRuneInString(q[i+n:])
				if !isAttrChar(r2) {
					break
				}
				n += w2
			}
			// A scoped attribute may have a quoted name: span."my attr".
			if n > 0 && q[i+n-1] == '.' && i+n < len(q) && q[i+n] == '"' {
				s, sn, err := lexString(q[i+n:])
				if err != nil {
					return nil, fmt.Errorf("at position %d: %w", i+n+1, err)
				}
				toks = append(toks, token{kind: tIdent, text: q[i:i+n] + s, pos: start})
				i += n + sn
				continue
			}
			emit(tIdent, n)
		default:
			emit(tOther, w)
		}
	}
	toks = append(toks, token{kind: tEOF, pos: len(q)})
	return toks, nil
}

// lexString reads a double-quoted (with Go-style escapes) or back-quoted
// string at the start of s and returns its value and length in bytes.
func lexString(s string) (string, int, error) {
	quote := s[0]
	if quote == '`' {
		end := strings.IndexByte(s[1:], '`')
		if end < 0 {
			return "", 0, fmt.Errorf("unterminated string")
		}
		return s[1 : 1+end], end + 2, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated string")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '"', '\'':
				b.WriteByte(s[i])
			default:
				// Keep unknown escapes (e.g. \d in a regex) as written.
				b.WriteByte('\\')
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// lexNumber reads a number or a duration (a number followed by a unit).
func lexNumber(s string) (n int, isDuration bool) {
	if s[0] == '-' {
		n = 1
	}
	for n < len(s) && (s[n] >= '0' && s[n] <= '9' || s[n] == '.') {
		n++
	}
	// Exponent (1e3) only when followed by a digit, so "1e" stays a unit error.
	if n+1 < len(s) && (s[n] == 'e' || s[n] == 'E') && (s[n+1] >= '0' && s[n+1] <= '9' || s[n+1] == '-' || s[n+1] == '+') {
		n++
		if s[n] == '-' || s[n] == '+' {
			n++
		}
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		return n, false
	}
	u := letters(s, n)
	if u == n {
		return n, false
	}
	// A compound duration such as 1m30s (as Value.String renders 90s):
	// more number-and-unit pairs.
	for u < len(s) && s[u] >= '0' && s[u] <= '9' {
		d := u
		for d < len(s) && (s[d] >= '0' && s[d] <= '9' || s[d] == '.') {
			d++
		}
		l := letters(s, d)
		if l == d {
			break
		}
		u = l
	}
	return u, true
}

// letters returns the end of the run of letters in s from i.
func letters(s string, i int) int {
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) {
			break
		}
		i += w
	}
	return i
}

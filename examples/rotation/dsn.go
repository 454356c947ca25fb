package main

import (
	"errors"
	"net/url"
	"strings"
)

// spaces separate the pairs of a key=value DSN.
const spaces = " \t\n\r\f\v"

// stripCredentials returns dsn, a lib/pq URL or key=value string, without
// its user and password, for the application pool, whose logins come from
// the secret store. Errors never quote dsn, which holds a password.
func stripCredentials(dsn string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return stripURL(dsn)
	}
	kvs, err := parseKeyValues(dsn)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		if kv.key != "user" && kv.key != "password" {
			parts = append(parts, kv.key+"="+quoteValue(kv.value))
		}
	}
	return strings.Join(parts, " "), nil
}

// stripURL removes the user information and the user and password query
// parameters of a URL DSN.
func stripURL(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", errors.New("cannot parse -admin-dsn as a URL")
	}
	u.User = nil
	q := u.Query()
	q.Del("user")
	q.Del("password")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// keyValue is one setting of a key=value DSN.
type keyValue struct{ key, value string }

// parseKeyValues splits a key=value DSN the way libpq does: values may be
// single-quoted, and a backslash escapes the next character.
func parseKeyValues(s string) ([]keyValue, error) {
	var out []keyValue
	rest := strings.TrimLeft(s, spaces)
	for rest != "" {
		kv, r, err := nextKeyValue(rest)
		if err != nil {
			return nil, err
		}
		out = append(out, kv)
		rest = strings.TrimLeft(r, spaces)
	}
	return out, nil
}

// nextKeyValue reads the setting at the start of s and returns the rest.
func nextKeyValue(s string) (keyValue, string, error) {
	eq := strings.IndexByte(s, '=')
	if eq < 0 {
		return keyValue{}, "", errors.New(`-admin-dsn: a key has no "="`)
	}
	key := strings.TrimRight(s[:eq], spaces)
	if key == "" || strings.ContainsAny(key, spaces) {
		return keyValue{}, "", errors.New("-admin-dsn: malformed key")
	}
	val, rest, err := readValue(strings.TrimLeft(s[eq+1:], spaces))
	return keyValue{key: key, value: val}, rest, err
}

// readValue reads one value, quoted or not, and returns the rest of s.
func readValue(s string) (val, rest string, err error) {
	quoted := strings.HasPrefix(s, "'")
	if quoted {
		s = s[1:]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case quoted && c == '\'':
			return b.String(), s[i+1:], nil
		case !quoted && strings.IndexByte(spaces, c) >= 0:
			return b.String(), s[i:], nil
		default:
			b.WriteByte(c)
		}
	}
	if quoted {
		return "", "", errors.New("-admin-dsn: unterminated quoted value")
	}
	return b.String(), "", nil
}

// quoteValue single-quotes v for a key=value DSN.
func quoteValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

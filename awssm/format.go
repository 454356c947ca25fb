package awssm

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gopqr/gopqr"
)

// The keys of the formats this package reads.
const (
	keyMasterARN = "masterarn"
	keyActive    = "active_credential"
	keyOddUser   = "odd_username"
	keyOddPass   = "odd_password"
	keyEvenUser  = "even_username"
	keyEvenPass  = "even_password"
)

// parsed is what one secret version holds.
type parsed struct {
	pairs       []gopqr.Pair
	alternating bool // the value has a masterarn key
}

// parse reads a secret value. On failure it returns a reason that names
// keys only: JSON decoding errors are dropped, not wrapped, since their
// text can quote the input (a syntax error quotes the offending character,
// a type error a number's digits).
func (c *config) parse(value string) (parsed, string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(value), &obj); err != nil || obj == nil {
		return parsed{}, "the value is not a JSON object"
	}
	_, alt := obj[keyMasterARN]
	f := c.format
	if f == formatAuto {
		f = formatKeys
		for _, k := range []string{keyActive, keyOddUser, keyEvenUser} {
			if _, ok := obj[k]; ok {
				f = formatOddEven
			}
		}
	}
	if f == formatOddEven {
		pairs, reason := oddEven(obj)
		return parsed{pairs: pairs, alternating: alt}, reason
	}
	p, reason := pair(obj, c.userKey, c.passKey)
	if reason != "" {
		return parsed{}, reason
	}
	return parsed{pairs: []gopqr.Pair{p}, alternating: alt}, ""
}

// oddEven reads the odd/even format, the active login first.
func oddEven(obj map[string]json.RawMessage) ([]gopqr.Pair, string) {
	active, reason := str(obj, keyActive)
	if reason != "" {
		return nil, reason
	}
	odd, reason := pair(obj, keyOddUser, keyOddPass)
	if reason != "" {
		return nil, reason
	}
	even, reason := pair(obj, keyEvenUser, keyEvenPass)
	if reason != "" {
		return nil, reason
	}
	switch active {
	case "odd":
		return []gopqr.Pair{odd, even}, ""
	case "even":
		return []gopqr.Pair{even, odd}, ""
	}
	return nil, strconv.Quote(keyActive) + ` is neither "odd" nor "even"`
}

// pair reads one login.
func pair(obj map[string]json.RawMessage, userKey, passKey string) (gopqr.Pair, string) {
	user, reason := str(obj, userKey)
	if reason != "" {
		return gopqr.Pair{}, reason
	}
	pass, reason := str(obj, passKey)
	if reason != "" {
		return gopqr.Pair{}, reason
	}
	return gopqr.Pair{Username: user, Password: pass}, ""
}

// str reads a non-empty string without NUL bytes.
func str(obj map[string]json.RawMessage, key string) (string, string) {
	q := strconv.Quote(key)
	raw, ok := obj[key]
	if !ok {
		return "", "no " + q + " key"
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || string(raw) == "null" {
		return "", q + " is not a string"
	}
	switch {
	case s == "":
		return "", q + " is empty"
	case strings.ContainsRune(s, 0):
		return "", q + " holds a NUL byte"
	}
	return s, ""
}

// appendNew appends the pairs of more that list does not hold yet.
func appendNew(list, more []gopqr.Pair) []gopqr.Pair {
	for _, p := range more {
		dup := false
		for _, q := range list {
			if p == q {
				dup = true
				break
			}
		}
		if !dup {
			list = append(list, p)
		}
	}
	return list
}

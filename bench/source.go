package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// librarySum returns a short SHA-256 of the library's own Go files (the
// module root's, tests excepted), so that results can be tied to the code
// they measured while that code changes. It returns "unknown" when the
// module root is not found from the working directory.
func librarySum() string {
	root, ok := moduleRoot()
	if !ok {
		return "unknown"
	}
	files, err := filepath.Glob(filepath.Join(root, "*.go"))
	if err != nil {
		return "unknown"
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "unknown"
		}
		h.Write([]byte(filepath.Base(f) + "\x00"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// moduleRoot finds the nearest directory at or above the working directory
// that holds a go.mod.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoPostgres reports that no PostgreSQL server binaries were found.
// scripts/ensure-postgres.sh installs them.
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres) found")

// distroBinGlob matches the per-version binary directories of Debian and
// Ubuntu packages.
const distroBinGlob = "/usr/lib/postgresql/*/bin"

// findBinDir returns the directory holding initdb and postgres: dir if not
// empty, else $PG_BIN, else the directory of initdb on $PATH, else the
// highest version matching distroBinGlob.
func findBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("PG_BIN")
	}
	if dir != "" {
		if err := checkBinDir(dir); err != nil {
			return "", err
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); checkBinDir(d) == nil {
			return d, nil
		}
	}
	return highestDistroBinDir()
}

// checkBinDir reports whether dir holds executable initdb and postgres.
func checkBinDir(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgtest: %s: %w", p, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("pgtest: %s is not an executable file", p)
		}
	}
	return nil
}

// highestDistroBinDir returns the usable distroBinGlob match with the
// highest version, or ErrNoPostgres.
func highestDistroBinDir() (string, error) {
	dirs, err := filepath.Glob(distroBinGlob)
	if err != nil {
		return "", fmt.Errorf("pgtest: glob %s: %w", distroBinGlob, err)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(versionOf(b), versionOf(a))
	})
	for _, d := range dirs {
		if checkBinDir(d) == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

// versionOf returns the version component of a distroBinGlob match.
func versionOf(binDir string) string {
	return filepath.Base(filepath.Dir(binDir))
}

// compareVersions compares dotted numeric versions such as "9.6" and "15";
// parts that are not numbers compare as zero.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		if d := versionPart(pa, i) - versionPart(pb, i); d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
	}
	return 0
}

// versionPart returns parts[i] as a number, or zero.
func versionPart(parts []string, i int) int {
	if i >= len(parts) {
		return 0
	}
	n, err := strconv.Atoi(parts[i])
	if err != nil {
		return 0
	}
	return n
}

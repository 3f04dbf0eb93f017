package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned when a path under the output root passes through
// a symbolic link: outputs, spools and staging directories are never
// written through one, so a link planted in the root cannot redirect them.
var ErrSymlink = errors.New("sink: a path component under the output root is a symbolic link")

// ErrTaken is returned when an output destination already holds another
// execution's output, or lies inside one: an output directory belongs to
// one execution for ever.
var ErrTaken = errors.New("output destination already holds another execution's output")

// Root resolves the operator's output root once (the root itself may be a
// link the operator chose; nothing below it may be).
func Root(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return "", fmt.Errorf("sink: output root: %w", err)
	}
	return filepath.EvalSymlinks(abs)
}

// Confine resolves an output destination under root: relative paths are
// joined to root, absolute ones must already be inside it. It checks names
// only; MkdirBeneath checks the file system.
func Confine(root, dest string) (string, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	p := dest
	if !filepath.IsAbs(p) {
		p = filepath.Join(absRoot, p)
	}
	p = filepath.Clean(p)
	if p != absRoot && !strings.HasPrefix(p, absRoot+string(filepath.Separator)) {
		return "", fmt.Errorf("output destination must be inside %s", absRoot)
	}
	return p, nil
}

// rel splits dir, which Confine placed under root, into its components.
func rel(root, dir string) ([]string, error) {
	r, err := filepath.Rel(root, dir)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("sink: %s is not under the output root", dir)
	}
	if r == "." {
		return nil, nil
	}
	return strings.Split(r, string(filepath.Separator)), nil
}

// openDir opens name inside the directory dirfd without following a link
// and without leaving dirfd: openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS where the kernel has it (5.6+), otherwise openat
// with O_NOFOLLOW, which refuses a link as the last (here the only)
// component.
func openDir(dirfd int, name string) (int, error) {
	fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
		return -1, ErrSymlink
	}
	if errors.Is(err, unix.ENOTDIR) {
		// O_NOFOLLOW|O_DIRECTORY on a link gives ENOTDIR on some kernels.
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, ErrSymlink
		}
	}
	return fd, err
}

// MkdirBeneath makes sure every directory from root down to dir exists and
// none of them is a symbolic link, creating the missing ones (mode 0750).
// root must come from Root.
func MkdirBeneath(root, dir string) error { return walkBeneath(root, dir, true) }

// CheckBeneath checks that no existing directory from root down to dir is
// a symbolic link, creating nothing.
func CheckBeneath(root, dir string) error { return walkBeneath(root, dir, false) }

func walkBeneath(root, dir string, create bool) error {
	parts, err := rel(root, dir)
	if err != nil {
		return err
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sink: open output root: %w", err)
	}
	for _, name := range parts {
		next, err := openDir(fd, name)
		if errors.Is(err, unix.ENOENT) && !create {
			unix.Close(fd)
			return nil
		}
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(fd, name, 0o750); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return fmt.Errorf("sink: create %s: %w", name, err)
			}
			next, err = openDir(fd, name)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("sink: %s: %w", dir, err)
		}
		fd = next
	}
	unix.Close(fd)
	return nil
}

// Ownership is who an output directory belongs to, from its manifest.
type Ownership struct {
	ExecutionID string `json:"execution_id"`
	UserID      string `json:"user_id"`
}

// OwnerOf reads the owner of the output directory dir: exists is false
// when nothing is there. A directory without a readable manifest, or a
// link, has an unknown owner and counts as taken.
func OwnerOf(dir string) (o Ownership, exists bool, err error) {
	st, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return o, false, nil
	}
	if err != nil {
		return o, true, err
	}
	if st.Mode()&os.ModeSymlink != 0 {
		return o, true, ErrSymlink
	}
	if !st.IsDir() {
		return o, true, nil
	}
	fd, err := unix.Open(filepath.Join(dir, "manifest.json"), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return o, true, nil
	}
	f := os.NewFile(uintptr(fd), "manifest.json")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return o, true, nil
	}
	_ = json.Unmarshal(b, &o)
	return o, true, nil
}

// insideOutput reports whether a directory between root and dir (both
// excluded) is already an execution's output: a destination may not be
// nested inside another one.
func insideOutput(root, dir string) (string, bool) {
	parts, err := rel(root, dir)
	if err != nil {
		return "", false
	}
	p := root
	for _, name := range parts[:max(len(parts)-1, 0)] {
		p = filepath.Join(p, name)
		if _, err := os.Lstat(filepath.Join(p, "manifest.json")); err == nil {
			return p, true
		}
	}
	return "", false
}

// Claim picks the directory an execution writes its output to: dest itself
// when it is free or already this execution's (a rerun after a crash), or,
// when newVersion is set and dest belongs to the same user, the first of
// dest.v2, dest.v3, ... that is free or this execution's. Anything else is
// ErrTaken: another execution's files are never replaced.
func Claim(root, dest string, me Ownership, newVersion bool) (string, error) {
	if at, ok := insideOutput(root, dest); ok {
		r, _ := filepath.Rel(root, at)
		return "", fmt.Errorf("%w: it would lie inside the output %q", ErrTaken, r)
	}
	for v := 1; v <= 1000; v++ {
		cand := dest
		if v > 1 {
			cand = fmt.Sprintf("%s.v%d", dest, v)
		}
		o, exists, err := OwnerOf(cand)
		if err != nil {
			return "", fmt.Errorf("sink: %s: %w", filepath.Base(cand), err)
		}
		if !exists || (me.ExecutionID != "" && o.ExecutionID == me.ExecutionID) {
			return cand, nil
		}
		if !newVersion || o.UserID != me.UserID || o.UserID == "" {
			r, _ := filepath.Rel(root, cand)
			return "", fmt.Errorf("%w: %q", ErrTaken, r)
		}
	}
	return "", fmt.Errorf("%w: %q has 1000 versions", ErrTaken, dest)
}

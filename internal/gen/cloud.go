package gen

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"time"
)

// CloudFile is one file of a generated Bitrix cloud list.
type CloudFile struct {
	Path string // at the CDN: BUCKET/…, as listed
	Save string // under the site's upload/: Path without its bucket
	Size int64
	Skip bool // a cache or temporary file restore.php passes over
}

// CloudBucket is the first element of every generated path.
const CloudBucket = "bx-cloud-5e6f7a8b"

// BitrixCloudList writes the cloud file list of a Bitrix site,
// SITE/bitrix/restore_cloud.txt in restore.php's format (one
// `YYYY-MM-DD HH:MM:SS SIZE PATH` per line, PATH starting with the
// bucket), and the listed files under serve/ at their PATH, so that a
// file server on serve/ is a CDN host. Sizes run from 0 to about 200 KB
// (a few over 1 MiB); names include spaces, Cyrillic and nested
// directories; every tenth file sits under resize_cache/ or tmp/, which
// restore.php passes over (those are not written to serve/). The same
// arguments give the same bytes.
func BitrixCloudList(site, serve string, n int, seed uint64) ([]CloudFile, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5bd1e995))
	if err := os.MkdirAll(filepath.Join(site, "bitrix"), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(site, "bitrix", "restore_cloud.txt"))
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	dirs := []string{"iblock", "main", "medialibrary", "forum/upload", "iblock/ab1", "uf/3c2"}
	names := []string{"photo", "товар", "price list", "doc", "img_0"}
	exts := []string{".jpg", ".png", ".pdf", ".xlsx", ""}
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	var out []CloudFile
	for i := 0; i < n; i++ {
		dir := dirs[rng.IntN(len(dirs))] + fmt.Sprintf("/%03x", rng.IntN(4096))
		c := CloudFile{Size: rng.Int64N(200_000)}
		switch {
		case i%10 == 9:
			dir, c.Skip = []string{"resize_cache/iblock", "tmp"}[rng.IntN(2)], true
		case i%50 == 7:
			c.Size = 1<<20 + rng.Int64N(300_000)
		case i%40 == 3:
			c.Size = 0
		}
		c.Save = path.Join(dir, fmt.Sprintf("%s %d%s", names[rng.IntN(len(names))], i, exts[rng.IntN(len(exts))]))
		c.Path = CloudBucket + "/" + c.Save
		fmt.Fprintf(w, "%s %d %s\n", t0.Add(time.Duration(i)*time.Minute).Format("2006-01-02 15:04:05"), c.Size, c.Path)
		if !c.Skip {
			if err := writeCloudFile(filepath.Join(serve, filepath.FromSlash(c.Path)), c.Size, rng); err != nil {
				f.Close()
				return nil, err
			}
		}
		out = append(out, c)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return nil, err
	}
	return out, nil
}

func writeCloudFile(p string, size int64, rng *rand.Rand) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return os.WriteFile(p, b, 0o644)
}

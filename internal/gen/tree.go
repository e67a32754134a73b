package gen

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// node is one entry of a generated tree, in creation order.
type node struct {
	name   string // slash-separated, relative
	kind   byte   // 'f' file, 'b' random binary, 'd' dir, 'l' symlink, 'h' hard link
	size   int64
	mode   fs.FileMode
	target string // symlink target or hard link source
	mtime  time.Time
}

// Tree writes a realistic site tree of about totalBytes into dir (created
// if needed), deterministic from seed. See the package doc for what it holds.
func Tree(dir string, seed int64, totalBytes int64) error {
	if totalBytes < 0 {
		return fmt.Errorf("gen tree: negative size %d", totalBytes)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	nodes := plan(rng, totalBytes)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gen tree: %w", err)
	}
	lines := linePool(rng)
	bin := rand.NewChaCha8(chachaSeed(seed))
	buf := make([]byte, 1<<20)
	for _, n := range nodes {
		p := filepath.Join(dir, filepath.FromSlash(n.name))
		var err error
		switch n.kind {
		case 'd':
			err = os.MkdirAll(p, 0o755)
		case 'f':
			err = writeText(p, n.size, rng, lines)
		case 'b':
			err = writeRandom(p, n.size, bin, buf)
		case 'l':
			err = os.Symlink(n.target, p)
		case 'h':
			err = os.Link(filepath.Join(dir, filepath.FromSlash(n.target)), p)
		}
		if err != nil {
			return fmt.Errorf("gen tree: %w", err)
		}
	}
	// Metadata last: modes and times of files and links, then directories
	// deepest first so that creating entries does not touch their mtimes.
	for _, n := range nodes {
		p := filepath.Join(dir, filepath.FromSlash(n.name))
		switch n.kind {
		case 'f', 'b':
			if err := os.Chmod(p, n.mode); err != nil {
				return fmt.Errorf("gen tree: %w", err)
			}
			if err := os.Chtimes(p, n.mtime, n.mtime); err != nil {
				return fmt.Errorf("gen tree: %w", err)
			}
		case 'l':
			if err := lutimes(p, n.mtime); err != nil {
				return fmt.Errorf("gen tree: %w", err)
			}
		}
	}
	dirs := []node{{name: ".", kind: 'd', mode: 0o755, mtime: nodes[0].mtime}}
	for _, n := range nodes {
		if n.kind == 'd' {
			dirs = append(dirs, n)
		}
	}
	slices.SortStableFunc(dirs, func(a, b node) int {
		return strings.Count(b.name, "/") - strings.Count(a.name, "/")
	})
	for _, n := range dirs {
		p := filepath.Join(dir, filepath.FromSlash(n.name))
		if n.name == "." {
			p = dir
		}
		if err := os.Chmod(p, n.mode); err != nil {
			return fmt.Errorf("gen tree: %w", err)
		}
		if err := os.Chtimes(p, n.mtime, n.mtime); err != nil {
			return fmt.Errorf("gen tree: %w", err)
		}
	}
	return nil
}

var (
	modules  = []string{"main", "iblock", "sale", "catalog", "search", "fileman", "currency", "form"}
	words    = []string{"element", "section", "property", "basket", "order", "price", "user", "group", "option", "event", "agent", "cache", "template", "component", "result", "filter", "select", "update", "delete", "import", "export", "handler", "manager", "helper", "provider", "storage"}
	exts     = []string{".php", ".php", ".php", ".php", ".html", ".css", ".js", ".txt"}
	binExts  = []string{".jpg", ".png", ".pdf", ".gif", ".webp", ".zip"}
	longName = "very-long-product-description-image-for-catalog-item-number-000123-with-extra-qualifiers-and-a-suffix.jpg"
)

// plan decides every entry of the tree from rng, before anything is written.
func plan(rng *rand.Rand, total int64) []node {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	when := func() time.Time { return time.Unix(base+rng.Int64N(2*365*86400), 0) }
	var nodes []node
	dir := func(name string, mode fs.FileMode) {
		nodes = append(nodes, node{name: name, kind: 'd', mode: mode, mtime: when()})
	}
	file := func(name string, kind byte, size int64, mode fs.FileMode) {
		nodes = append(nodes, node{name: name, kind: kind, size: size, mode: mode, mtime: when()})
	}
	link := func(name, target string) {
		nodes = append(nodes, node{name: name, kind: 'l', target: target, mtime: when()})
	}

	// The skeleton every site has.
	for _, d := range []string{"bitrix", "bitrix/modules", "bitrix/components", "bitrix/components/bitrix",
		"bitrix/templates", "bitrix/templates/main", "bitrix/templates/main/css", "bitrix/templates/main/images",
		"bitrix/php_interface", "bitrix/cache", "local", "local/php_interface", "upload", "upload/iblock",
		"upload/medialibrary", "upload/файлы", "about", "news", "catalog"} {
		dir(d, 0o755)
	}
	nodes[slices.IndexFunc(nodes, func(n node) bool { return n.name == "upload" })].mode = 0o775
	dir("bitrix/backup", 0o700)
	dir("bitrix/modules/main/install", 0o755)
	file("bitrix/modules/main/install/version.php", 'f', 300, 0o444)
	nodes[slices.IndexFunc(nodes, func(n node) bool { return n.name == "bitrix/modules/main/install" })].mode = 0o555
	file("index.php", 'f', 1800, 0o644)
	file(".htaccess", 'f', 900, 0o644)
	file("bitrix/.settings.php", 'f', 2400, 0o600)
	file("bitrix/php_interface/dbconn.php", 'f', 700, 0o600)
	file("bitrix/.access.php", 'f', 0, 0o644) // empty file
	file("bitrix/modules/main/tools.sh", 'f', 1200, 0o755)
	dir("local/php_interface/include", 0o750)
	file("local/php_interface/init.php", 'f', 3000, 0o644)

	var textBudget, binBudget int64 = total * 65 / 100, total * 35 / 100
	used := int64(0)
	for _, n := range nodes {
		used += n.size
	}
	textBudget -= used

	// Modules and components: many small text files.
	var dirs []string
	for _, m := range modules {
		d := "bitrix/modules/" + m
		if !slices.ContainsFunc(nodes, func(n node) bool { return n.name == d }) {
			dir(d, 0o755)
		}
		for _, sub := range []string{"lib", "classes", "classes/general", "lang", "lang/ru"} {
			dir(d+"/"+sub, 0o755)
			dirs = append(dirs, d+"/"+sub)
		}
	}
	for i, w := range words[:10] {
		d := fmt.Sprintf("bitrix/components/bitrix/%s.list", w)
		dir(d, 0o755)
		dir(d+"/templates", 0o755)
		dir(d+"/templates/.default", 0o755)
		dirs = append(dirs, d, d+"/templates/.default")
		if i == 0 {
			// A deep path well over 100 bytes.
			deep := d + "/templates/.default/images/icons/social-networks/monochrome"
			for _, p := range []string{"/images", "/images/icons", "/images/icons/social-networks", "/images/icons/social-networks/monochrome"} {
				dir(d+"/templates/.default"+p, 0o755)
			}
			file(deep+"/vkontakte-share-button-large.png", 'b', 2048, 0o644)
		}
	}
	dirs = append(dirs, "about", "news", "catalog", "bitrix/templates/main", "bitrix/templates/main/css")
	for n := 0; textBudget > 0 && n < 1_000_000; n++ {
		size := int64(rng.ExpFloat64()*3000) + 120
		size = min(size, 64<<10, textBudget)
		d := dirs[rng.IntN(len(dirs))]
		name := fmt.Sprintf("%s/%s_%s%d%s", d, words[rng.IntN(len(words))], words[rng.IntN(len(words))], n, exts[rng.IntN(len(exts))])
		mode := fs.FileMode(0o644)
		if rng.IntN(20) == 0 {
			mode = 0o664
		}
		file(name, 'f', size, mode)
		textBudget -= size
	}

	// Uploads: random binaries, a few of them large.
	var up []string
	for i := 0; i < 6; i++ {
		d := fmt.Sprintf("upload/iblock/%03x", rng.IntN(4096))
		if slices.Contains(up, d) {
			continue
		}
		dir(d, 0o755)
		up = append(up, d)
	}
	file(up[0]+"/"+longName, 'b', 5000, 0o644)
	file("upload/medialibrary/Price list 2024.pdf", 'b', 7000, 0o644)
	file("upload/файлы/отчёт за год.pdf", 'b', 6000, 0o644)
	binBudget -= 18000
	for n := 0; binBudget > 0 && n < 100_000; n++ {
		var size int64
		if n%8 == 7 {
			size = max(binBudget/3, 4096)
		} else {
			size = int64(rng.ExpFloat64()*40_000) + 500
		}
		size = min(size, binBudget)
		name := fmt.Sprintf("%s/%016x%s", up[rng.IntN(len(up))], rng.Uint64(), binExts[rng.IntN(len(binExts))])
		file(name, 'b', size, 0o644)
		binBudget -= size
	}

	// Links: relative symlinks to a directory, to a file, up a level; hard links.
	link("bitrix/templates/current", "main")
	link("upload/latest.pdf", "medialibrary/Price list 2024.pdf")
	link("local/templates", "../bitrix/templates")
	link("index.htm", "index.php")
	nodes = append(nodes, node{name: "bitrix/.settings_extra.php", kind: 'h', target: "bitrix/.settings.php"})
	nodes = append(nodes, node{name: up[1] + "/same-image.jpg", kind: 'h', target: up[0] + "/" + longName})
	return nodes
}

// linePool returns PHP-like source lines that files are assembled from, so
// text compresses about as well as real code.
func linePool(rng *rand.Rand) [][]byte {
	pool := make([][]byte, 0, 400)
	w := func() string { return words[rng.IntN(len(words))] }
	for i := 0; i < 400; i++ {
		var s string
		switch rng.IntN(9) {
		case 0:
			s = fmt.Sprintf("namespace Bitrix\\%s\\%s;", title(w()), title(w()))
		case 1:
			s = fmt.Sprintf("use Bitrix\\Main\\%s;", title(w()))
		case 2:
			s = fmt.Sprintf("\tpublic function get%s%s($%s, array $%s = [])", title(w()), title(w()), w(), w())
		case 3:
			s = fmt.Sprintf("\t\t$%s = $this->%s->get%s($%s);", w(), w(), title(w()), w())
		case 4:
			s = fmt.Sprintf("\t\tif (!isset($arParams[\"%s_%s\"])) { return false; }", strings.ToUpper(w()), strings.ToUpper(w()))
		case 5:
			s = fmt.Sprintf("\t\t// %s the %s before the %s is saved", w(), w(), w())
		case 6:
			s = fmt.Sprintf("<div class=\"%s-%s\"><?=htmlspecialcharsbx($arResult[\"%s\"])?></div>", w(), w(), strings.ToUpper(w()))
		case 7:
			s = fmt.Sprintf(".%s-%s { margin: %dpx %dpx; color: #%06x; }", w(), w(), rng.IntN(40), rng.IntN(40), rng.IntN(1<<24))
		default:
			s = "\t}"
		}
		pool = append(pool, []byte(s+"\n"))
	}
	return pool
}

func writeText(p string, size int64, rng *rand.Rand, lines [][]byte) error {
	var b bytes.Buffer
	b.Grow(int(size))
	if size >= 6 {
		b.WriteString("<?php\n")
	}
	for int64(b.Len()) < size {
		b.Write(lines[rng.IntN(len(lines))])
	}
	return os.WriteFile(p, b.Bytes()[:size], 0o600)
}

func writeRandom(p string, size int64, src *rand.ChaCha8, buf []byte) (err error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	for size > 0 {
		n := min(int64(len(buf)), size)
		_, _ = src.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

func chachaSeed(seed int64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	copy(s[8:], "haul gen binary stream")
	return s
}

// title upper-cases the first letter of an ASCII word.
func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

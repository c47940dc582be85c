/*
 * Image container reader and writer.  The writer streams records to a
 * temporary file and renames it into place only after the trailer is
 * written, so a failed dump never leaves an image that looks complete.
 * The reader checks every header and metadata payload hash, the stream
 * hash in the trailer, and that the trailer is there at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "image.h"
#include "records.h"
#include "log.h"
#include "util.h"
#include "header.pb-c.h"

uint64_t img_hash_pages(const void *buf, uint64_t len)
{
	return XXH3_64bits(buf, len);
}

size_t page_sums_count(uint64_t len)
{
	return (len + IMG_PAGES_CHUNK - 1) >> IMG_PAGES_CHUNK_SHIFT;
}

void page_sums_init(struct page_sums *s, uint64_t len)
{
	XXH3_state_t *st = s->st;

	free(s->chunk);
	memset(s, 0, sizeof(*s));
	s->n = page_sums_count(len);
	s->chunk = xzalloc((s->n ? s->n : 1) * sizeof(*s->chunk));
	s->st = st ? st : XXH3_createState();
	XXH3_64bits_reset(s->st);
}

void page_sums_update(struct page_sums *s, const void *buf, uint64_t len)
{
	const char *p = buf;

	while (len && s->done < s->n) {
		uint64_t n = min(len, IMG_PAGES_CHUNK - s->in_piece);

		if (!s->in_piece && n == IMG_PAGES_CHUNK) {
			s->chunk[s->done++] = XXH3_64bits(p, n); /* a whole piece at once */
		} else {
			XXH3_64bits_update(s->st, p, n);
			s->in_piece += n;
			if (s->in_piece == IMG_PAGES_CHUNK) {
				s->chunk[s->done++] = XXH3_64bits_digest(s->st);
				s->in_piece = 0;
				XXH3_64bits_reset(s->st);
			}
		}
		p += n;
		len -= n;
	}
}

bool page_sums_finish(struct page_sums *s)
{
	if (s->done < s->n && s->in_piece) { /* the short last piece */
		s->chunk[s->done++] = XXH3_64bits_digest(s->st);
		s->in_piece = 0;
	}
	return s->done == s->n;
}

uint64_t page_sums_digest(const uint64_t *chunk, size_t n)
{
	return XXH3_64bits(chunk, n * sizeof(*chunk));
}

void page_sums_free(struct page_sums *s)
{
	free(s->chunk);
	if (s->st)
		XXH3_freeState(s->st);
	memset(s, 0, sizeof(*s));
}

static void rec_hdr_seal(struct img_rec_hdr *h)
{
	h->reserved = 0;
	h->hdr_hash = XXH32(h, offsetof(struct img_rec_hdr, hdr_hash), 0);
}

/*
 * Write all of buf, or fail; at fault point p (fault.h) fail as a full
 * disk does: half of it written, then ENOSPC.
 */
static int image_write(int fd, enum fault_point p, const void *buf, uint64_t len)
{
	if (fault_armed() && fault_at(p)) {
		int err = errno;

		if (write_all(fd, buf, len / 2))
			return -1;
		errno = err;
		return -1;
	}
	return write_all(fd, buf, len);
}

/* Write out what the record buffer holds. */
static int writer_flush(struct img_writer *w)
{
	size_t len = w->wlen;

	w->wlen = 0;
	if (len && write_all(w->fd, w->wbuf, len)) {
		pr_perror("cannot write image %s", w->tmp_path);
		return -1;
	}
	return 0;
}

/*
 * Records go through a buffer of IMG_WBUF bytes (a process with a
 * thousand sockets writes four thousand headers and small records): one
 * write per buffer, not two per record.  It is written out before page
 * data, which goes to the file directly, and at commit.  The fault point
 * is still per record: the buffer, then half of this one, then ENOSPC.
 */
static int writer_put(struct img_writer *w, const void *buf, uint64_t len)
{
	if (fault_armed() && fault_at(FAULT_IMG_WRITE)) {
		int err = errno;

		if (!writer_flush(w) && !write_all(w->fd, buf, len / 2))
			errno = err;
		pr_perror("cannot write image %s", w->tmp_path);
		return -1;
	}
	if (w->wlen + len > IMG_WBUF && writer_flush(w))
		return -1;
	if (len >= IMG_WBUF) {
		if (write_all(w->fd, buf, len)) {
			pr_perror("cannot write image %s", w->tmp_path);
			return -1;
		}
	} else {
		if (!w->wbuf)
			w->wbuf = xmalloc(IMG_WBUF);
		memcpy(w->wbuf + w->wlen, buf, len);
		w->wlen += len;
	}
	w->off += len;
	return 0;
}

static int writer_put_hdr(struct img_writer *w, uint32_t type, uint32_t flags, uint64_t len,
			  uint64_t hash)
{
	struct img_rec_hdr h = { .type = type, .flags = flags, .len = len, .hash = hash };

	rec_hdr_seal(&h);
	XXH64_update(w->stream, &h, sizeof(h));
	w->nrec++;
	return writer_put(w, &h, sizeof(h));
}

int img_writer_open(struct img_writer *w, const char *dir)
{
	struct img_prologue pro = { .major = IMG_VER_MAJOR, .minor = IMG_VER_MINOR };

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		pr_perror("cannot create image directory %s", dir);
		return -1;
	}
	w->dir = xstrdup(dir);
	w->path = xsprintf("%s/%s", dir, IMG_FILE_NAME);
	w->tmp_path = xsprintf("%s/.%s.partial", dir, IMG_FILE_NAME);
	/*
	 * A new file of our own, never one planted there: a partial image
	 * left by a killed dump is removed, and a symlink in its place is
	 * removed, not followed.
	 */
	if (unlink(w->tmp_path) && errno != ENOENT) {
		pr_perror("cannot remove the old partial image %s", w->tmp_path);
		goto err;
	}
	w->fd = fault_at(FAULT_IMG_CREATE)
		    ? -1
		    : open(w->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		pr_perror("cannot create image %s", w->tmp_path);
		goto err;
	}
	w->stream = XXH64_createState();
	XXH64_reset(w->stream, 0);
	memcpy(pro.magic, IMG_MAGIC, sizeof(pro.magic));
	pro.prologue_hash = XXH32(&pro, offsetof(struct img_prologue, prologue_hash), 0);
	if (writer_put(w, &pro, sizeof(pro)))
		goto err;
	return 0;
err:
	img_writer_abort(w);
	return -1;
}

int img_write_raw(struct img_writer *w, uint32_t type, const void *buf, uint64_t len)
{
	if (writer_put_hdr(w, type, 0, len, XXH64(buf, len, 0)))
		return -1;
	return writer_put(w, buf, len);
}

int img_write_msg(struct img_writer *w, uint32_t type, const ProtobufCMessage *msg)
{
	const struct img_rec_kind *k = img_rec_kind(type);
	size_t len;
	uint8_t stackbuf[4096], *buf;
	int ret;

	if (!k || k->desc != msg->descriptor) {
		pr_err("internal: a %s message written as a %s record\n", msg->descriptor->name,
		       img_rec_name(type));
		return -1;
	}
	len = protobuf_c_message_get_packed_size(msg);
	buf = len <= sizeof(stackbuf) ? stackbuf : xmalloc(len);
	protobuf_c_message_pack(msg, buf);
	ret = img_write_raw(w, type, buf, len);
	if (buf != stackbuf)
		free(buf);
	return ret;
}

#define PIPE_SLOTS 4

/* Pages on their way to the image: a ring of buffers and a writer thread. */
struct img_page_pipe {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *bufs; /* PIPE_SLOTS * IMG_PAGES_BUF */
	uint64_t len[PIPE_SLOTS];
	unsigned int head, tail; /* filled by the caller / written by the thread */
	bool done;
	int error;
	struct img_writer *w;
};

static void *page_pipe_writer(void *arg)
{
	struct img_page_pipe *p = arg;

	unpin(); /* the writer belongs on the other CPU */
	pthread_mutex_lock(&p->lock);
	for (;;) {
		unsigned int slot;
		char *buf;
		uint64_t len;

		while (p->head == p->tail && !p->done)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->head == p->tail)
			break;
		slot = p->tail % PIPE_SLOTS;
		buf = p->bufs + slot * IMG_PAGES_BUF;
		len = p->len[slot];
		pthread_mutex_unlock(&p->lock);
		if (!p->error && image_write(p->w->fd, FAULT_IMG_PAGES, buf, len)) {
			pr_perror("cannot write image %s", p->w->tmp_path);
			p->error = -1;
		}
		pthread_mutex_lock(&p->lock);
		p->tail++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The IMG_PAGES header, after padding so that the payload starts on a page boundary. */
static int pages_hdr(struct img_writer *w, uint64_t len)
{
	static const char zeros[PAGE_SIZE];
	uint64_t hdr = sizeof(struct img_rec_hdr);
	uint64_t payload_at = w->off + hdr;

	if (payload_at % PAGE_SIZE) {
		uint64_t pad = PAGE_SIZE - (payload_at + hdr) % PAGE_SIZE;

		if (pad == PAGE_SIZE)
			pad = 0;
		if (img_write_raw(w, IMG_PAD, zeros, pad))
			return -1;
	}
	/* page data goes to the file directly, after every record before it */
	if (writer_put_hdr(w, IMG_PAGES, IMG_RF_HASH_NEXT, len, 0) || writer_flush(w))
		return -1;
	return 0;
}

/*
 * The payload of a page record of len bytes as a shared writable mapping
 * of the image file itself, for workers to fill in parallel: the page
 * cache's pages are written through page faults, which do not take the
 * inode lock every write(2) to the file takes.  NULL with *err 0: the file
 * cannot be mapped so (the caller streams instead, img_pages_begin; the
 * header is written already and not written again); NULL with *err -1: failed.
 */
void *img_pages_map(struct img_writer *w, uint64_t len, int *err)
{
	void *map;

	*err = -1;
	if (pages_hdr(w, len))
		return NULL;
	w->pages_hdr_done = true;
	if (fault_armed() && fault_at(FAULT_IMG_PAGES)) {
		pr_perror("cannot write image %s", w->tmp_path);
		return NULL;
	}
	if (ftruncate(w->fd, w->off + len)) {
		pr_perror("cannot extend image %s", w->tmp_path);
		return NULL;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, w->off);
	if (map == MAP_FAILED) {
		pr_debug("cannot map image %s (%m): pages written in one stream\n", w->tmp_path);
		*err = ftruncate(w->fd, w->off) ? -1 : 0;
		return NULL;
	}
	*err = 0;
	return map;
}

/* The mapped payload is filled (ok) or given up: unmap it, go on after it. */
int img_pages_unmap(struct img_writer *w, void *map, uint64_t len, bool ok)
{
	w->pages_hdr_done = false;
	munmap(map, len);
	if (!ok)
		return -1;
	w->off += len;
	w->page_bytes += len;
	if (lseek(w->fd, w->off, SEEK_SET) != (off_t)w->off) {
		pr_perror("cannot seek in image %s", w->tmp_path);
		return -1;
	}
	return 0;
}

int img_pages_begin(struct img_writer *w, uint64_t len)
{
	struct img_page_pipe *p;

	if (!w->pages_hdr_done && pages_hdr(w, len))
		return -1;
	w->pages_hdr_done = false;
	w->pages_left = len;
	page_sums_init(&w->sums, len);
	/* a thread pays off only for records of several buffers */
	w->pages_sync = len <= 2 * IMG_PAGES_BUF;
	if (w->pages_sync) {
		if (!w->sync_buf)
			w->sync_buf = xmalloc(IMG_PAGES_BUF);
		return 0;
	}
	p = w->pipe = xzalloc(sizeof(*p));
	p->w = w;
	p->bufs = mmap(NULL, PIPE_SLOTS * IMG_PAGES_BUF, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->bufs == MAP_FAILED) {
		pr_perror("cannot allocate page buffers");
		goto err;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pthread_create(&p->thread, NULL, page_pipe_writer, p)) {
		pr_err("cannot start the page writer thread\n");
		munmap(p->bufs, PIPE_SLOTS * IMG_PAGES_BUF);
		goto err;
	}
	return 0;
err:
	free(p);
	w->pipe = NULL;
	return -1;
}

void *img_pages_buf(struct img_writer *w)
{
	struct img_page_pipe *p = w->pipe;
	void *buf;

	if (w->pages_sync)
		return w->sync_buf;
	pthread_mutex_lock(&p->lock);
	while (p->head - p->tail == PIPE_SLOTS)
		pthread_cond_wait(&p->cond, &p->lock);
	buf = p->bufs + (p->head % PIPE_SLOTS) * IMG_PAGES_BUF;
	pthread_mutex_unlock(&p->lock);
	return buf;
}

int img_pages_submit(struct img_writer *w, void *buf, uint64_t len)
{
	struct img_page_pipe *p = w->pipe;

	if (len > w->pages_left || len > IMG_PAGES_BUF) {
		pr_err("internal: page record overflow\n");
		return -1;
	}
	/* hashed here, while the buffer is still in this CPU's cache */
	page_sums_update(&w->sums, buf, len);
	w->pages_left -= len;
	w->page_bytes += len;
	if (w->pages_sync) {
		if (image_write(w->fd, FAULT_IMG_PAGES, buf, len)) {
			pr_perror("cannot write image %s", w->tmp_path);
			return -1;
		}
		w->off += len;
		return 0;
	}
	w->off += len;
	pthread_mutex_lock(&p->lock);
	p->len[p->head % PIPE_SLOTS] = len;
	p->head++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return p->error;
}

int img_pages_feed(struct img_writer *w, const void *data, uint64_t len)
{
	while (len) {
		uint64_t n = min(len, IMG_PAGES_BUF);
		void *buf = img_pages_buf(w);

		memcpy(buf, data, n);
		if (img_pages_submit(w, buf, n))
			return -1;
		data = (const char *)data + n;
		len -= n;
	}
	return 0;
}

/* Drain the pipe; the payload hash is only valid if this returns 0. */
/* Hand the record's checksums over to the caller. */
static int pages_sums_out(struct img_writer *w, struct page_sums *sums)
{
	if (!page_sums_finish(&w->sums)) {
		pr_err("internal: page record hashed short\n");
		return -1;
	}
	page_sums_free(sums);
	*sums = w->sums;
	sums->st = NULL;
	w->sums.chunk = NULL;
	w->sums.n = 0;
	return 0;
}

int img_pages_end(struct img_writer *w, struct page_sums *sums)
{
	struct img_page_pipe *p = w->pipe;
	int ret;

	if (w->pages_sync) {
		w->pages_sync = false;
		if (w->pages_left) {
			pr_err("internal: page record short by %llu bytes\n",
			       (unsigned long long)w->pages_left);
			return -1;
		}
		return pages_sums_out(w, sums);
	}
	if (!p)
		return -1;
	pthread_mutex_lock(&p->lock);
	p->done = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	ret = p->error;
	if (!ret && w->pages_left) {
		pr_err("internal: page record short by %llu bytes\n",
		       (unsigned long long)w->pages_left);
		ret = -1;
	}
	munmap(p->bufs, PIPE_SLOTS * IMG_PAGES_BUF);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	w->pipe = NULL;
	if (!ret)
		ret = pages_sums_out(w, sums);
	return ret;
}

int img_writer_commit(struct img_writer *w)
{
	ImageTrailer tr = IMAGE_TRAILER__INIT;
	int ret;

	tr.record_count = w->nrec;
	tr.stream_hash = XXH64_digest(w->stream);
	tr.page_bytes = w->page_bytes;
	if (img_write_msg(w, IMG_TRAILER, &tr.base) || writer_flush(w))
		goto err;
	if (close(w->fd)) {
		w->fd = -1;
		pr_perror("cannot write image %s", w->tmp_path);
		goto err;
	}
	w->fd = -1;
	if (fault_at(FAULT_IMG_COMMIT) || rename(w->tmp_path, w->path)) {
		pr_perror("cannot rename image to %s", w->path);
		goto err;
	}
	ret = 0;
	goto out;
err:
	ret = -1;
	unlink(w->tmp_path);
out:
	free(w->sync_buf);
	free(w->wbuf);
	XXH64_freeState(w->stream);
	page_sums_free(&w->sums);
	free(w->dir);
	free(w->path);
	free(w->tmp_path);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	return ret;
}

void img_writer_abort(struct img_writer *w)
{
	struct page_sums sums = { 0 };

	if (w->pipe)
		img_pages_end(w, &sums);
	page_sums_free(&sums);
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path)
		unlink(w->tmp_path);
	if (w->stream)
		XXH64_freeState(w->stream);
	page_sums_free(&w->sums);
	free(w->sync_buf);
	free(w->wbuf);
	free(w->dir);
	free(w->path);
	free(w->tmp_path);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

int img_reader_open(struct img_reader *r, const char *dir)
{
	struct img_prologue pro;
	struct stat st;
	int ret;

	memset(r, 0, sizeof(*r));
	r->path = xsprintf("%s/%s", dir, IMG_FILE_NAME);
	/* a symlink planted in the images directory is not followed */
	r->fd = open(r->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (r->fd < 0) {
		if (errno == ENOENT)
			pr_err("no image in %s (%s not found)\n", dir, r->path);
		else if (errno == ELOOP)
			pr_err("%s is a symbolic link; an image is not read through one\n",
			       r->path);
		else
			pr_perror("cannot open image %s", r->path);
		goto err;
	}
	if (fstat(r->fd, &st)) {
		pr_perror("cannot stat image %s", r->path);
		goto err;
	}
	r->size = st.st_size;
	ret = read_all(r->fd, &pro, sizeof(pro));
	if (ret) {
		pr_err("%s is not a stasis image (too short)\n", r->path);
		goto err;
	}
	if (memcmp(pro.magic, IMG_MAGIC, sizeof(pro.magic)) ||
	    pro.prologue_hash != XXH32(&pro, offsetof(struct img_prologue, prologue_hash), 0)) {
		pr_err("%s is not a stasis image (bad magic)\n", r->path);
		goto err;
	}
	if (pro.major > IMG_VER_MAJOR) {
		pr_err("%s has image format %u.%u, newer than this stasis reads (%u.x); upgrade "
		       "stasis\n",
		       r->path, pro.major, pro.minor, IMG_VER_MAJOR);
		goto err;
	}
	if (pro.major < IMG_VER_MAJOR) {
		pr_err("%s has image format %u.%u, which is no longer supported by this stasis "
		       "(needs %u.x); dump the tree again\n",
		       r->path, pro.major, pro.minor, IMG_VER_MAJOR);
		goto err;
	}
	r->major = pro.major;
	r->minor = pro.minor;
	r->off = sizeof(pro);
	r->stream = XXH64_createState();
	XXH64_reset(r->stream, 0);
	return 0;
err:
	img_reader_close(r);
	return -1;
}

/*
 * Read len bytes at the reader's position: 0, 1 at the end of the file,
 * -1 on error.  Through a buffer of IMG_WBUF bytes, so that a record's
 * header and its payload are not two reads each.
 */
static int reader_get(struct img_reader *r, void *dst, size_t len)
{
	char *p = dst;

	while (len) {
		size_t n = r->rlen - r->rpos;
		ssize_t got;

		if (n) {
			n = min(n, len);
			memcpy(p, r->rbuf + r->rpos, n);
			r->rpos += n;
			p += n;
			len -= n;
			continue;
		}
		if (len >= IMG_WBUF)
			return read_all(r->fd, p, len);
		if (!r->rbuf)
			r->rbuf = xmalloc(IMG_WBUF);
		r->rpos = r->rlen = 0;
		do
			got = read(r->fd, r->rbuf, IMG_WBUF);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return -1;
		if (!got)
			return 1;
		r->rlen = got;
	}
	return 0;
}

void img_reader_close(struct img_reader *r)
{
	if (r->fd > 0)
		close(r->fd);
	r->fd = -1;
	if (r->stream)
		XXH64_freeState(r->stream);
	r->stream = NULL;
	free(r->path);
	r->path = NULL;
	free(r->rbuf);
	r->rbuf = NULL;
	r->rpos = r->rlen = 0;
}

static int reader_truncated(struct img_reader *r)
{
	pr_err("image %s is truncated (ends at byte %llu without a trailer)\n", r->path,
	       (unsigned long long)r->size);
	return -1;
}

int img_next(struct img_reader *r, struct img_rec_hdr *h)
{
	int ret;

	if (r->trailer_seen)
		return 1;
	ret = fault_at(FAULT_IMG_READ) ? -1 : reader_get(r, h, sizeof(*h));
	if (ret < 0) {
		pr_perror("cannot read image %s", r->path);
		return -1;
	}
	if (ret > 0)
		return reader_truncated(r);
	if (h->hdr_hash != XXH32(h, offsetof(struct img_rec_hdr, hdr_hash), 0)) {
		pr_err("image %s is corrupt: bad record header at byte %llu\n", r->path,
		       (unsigned long long)r->off);
		return -1;
	}
	r->off += sizeof(*h);
	if (h->len > r->size || r->off + h->len > r->size)
		return reader_truncated(r);
	if (h->type == IMG_TRAILER) {
		/* The trailer's own header is not part of the stream hash. */
		return 0;
	}
	XXH64_update(r->stream, h, sizeof(*h));
	r->nrec++;
	return 0;
}

int img_read_payload(struct img_reader *r, const struct img_rec_hdr *h, void **bufp)
{
	void *buf = xmalloc(h->len);
	int ret;

	ret = fault_at(FAULT_IMG_READ) ? -1 : reader_get(r, buf, h->len);
	if (ret) {
		free(buf);
		if (ret < 0) {
			pr_perror("cannot read image %s", r->path);
			return -1;
		}
		return reader_truncated(r);
	}
	if (!(h->flags & IMG_RF_HASH_NEXT) && XXH64(buf, h->len, 0) != h->hash) {
		pr_err("image %s is corrupt: %s record at byte %llu fails its checksum\n", r->path,
		       img_rec_name(h->type), (unsigned long long)r->off - sizeof(*h));
		free(buf);
		return -1;
	}
	r->off += h->len;
	if (h->type == IMG_TRAILER) {
		ImageTrailer *tr = image_trailer__unpack(NULL, h->len, buf);

		if (!tr || tr->record_count != r->nrec ||
		    tr->stream_hash != XXH64_digest(r->stream)) {
			pr_err("image %s is corrupt: trailer does not match the records\n",
			       r->path);
			if (tr)
				image_trailer__free_unpacked(tr, NULL);
			free(buf);
			return -1;
		}
		image_trailer__free_unpacked(tr, NULL);
		r->trailer_seen = true;
	}
	*bufp = buf;
	return 0;
}

int img_skip_payload(struct img_reader *r, const struct img_rec_hdr *h, uint64_t *payload_off)
{
	size_t in_buf = min((uint64_t)(r->rlen - r->rpos), h->len);

	*payload_off = r->off;
	r->rpos += in_buf;
	if (h->len > in_buf && lseek(r->fd, h->len - in_buf, SEEK_CUR) < 0) {
		pr_perror("cannot seek in image %s", r->path);
		return -1;
	}
	r->off += h->len;
	return 0;
}

void *img_read_msg(struct img_reader *r, const struct img_rec_hdr *h,
		   const ProtobufCMessageDescriptor *desc)
{
	void *buf, *msg;

	if (img_read_payload(r, h, &buf))
		return NULL;
	msg = protobuf_c_message_unpack(desc, NULL, h->len, buf);
	free(buf);
	if (!msg)
		pr_err("image %s is corrupt: cannot decode %s record\n", r->path,
		       img_rec_name(h->type));
	return msg;
}

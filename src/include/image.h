/*
 * The image container: one ordered stream of checksummed records inside
 * DIR/stasis.img.  A fixed prologue (magic, version) is followed by records
 * {header, payload}; the first record is IMG_HEADER, the last IMG_TRAILER.
 * Metadata payloads are protobuf messages; IMG_PAGES payloads are raw pages
 * and start page-aligned in the file (an IMG_PAD record fills the gap).
 * docs/image-format.md is the specification.
 */
#ifndef STASIS_IMAGE_H
#define STASIS_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
/*
 * XXH3 through libxxhash's run-time dispatch (AVX2/AVX-512 where the CPU
 * has them; the same hash): 2-3x faster than the SSE2 build the plain
 * entry points are, on every page of every dump and restore.
 */
#include <xxh_x86dispatch.h>
#endif

#define IMG_FILE_NAME "stasis.img"
#define IMG_MAGIC     "STASIS\0\x1a"
#define IMG_VER_MAJOR 2
#define IMG_VER_MINOR 0

enum img_rec_type {
	IMG_HEADER = 1,
	IMG_TRAILER = 2,
	IMG_PAD = 3,
	IMG_TASK = 10,
	IMG_THREAD_CORE = 11,
	IMG_MM = 12,
	IMG_PAGEMAP = 13,
	IMG_PAGES = 14,
	IMG_FILE = 20,
	IMG_FD = 21,
	IMG_PIPE = 22,
	IMG_FSOBJ_DATA = 25, /* raw contents of a memfd/deleted file, one chunk */
	IMG_FLOCK = 26,
	IMG_POSIX_TIMERS = 27, /* images/evobj.proto */
	IMG_TTY = 30,
	IMG_SYSV_SHM = 45,	/* images/sysvipc.proto: a SysV shared memory segment */
	IMG_SYSV_SHM_DATA = 46, /* bytes of a segment */
	IMG_SYSV_SEM = 47,	/* a SysV semaphore set */
	IMG_SYSV_MSG = 48,	/* a SysV message queue and its messages */
	IMG_NETLOCK = 55,	/* images/netlock.proto: the dump's network lock (nft table) */
	IMG_CGROUP = 60,	/* images/cgroup.proto: the settings of a cgroup */
	IMG_NS = 70,		/* images/ns.proto: a UTS or time namespace of the tree */
	IMG_MNT = 75,		/* images/mnt.proto: a mount of the tree's mount namespace */
	IMG_MNT_FILE = 76,	/* a file of a tmpfs of the tree */
	IMG_MQUEUE = 86, /* images/sysvipc.proto: a POSIX queue of the tree's IPC namespace */
	IMG_REC_MAX
};

/* Record flag: payload hash is not in this header but in the next record
 * (IMG_PAGES: its IMG_PAGEMAP carries pages_hash), so pages can stream. */
#define IMG_RF_HASH_NEXT 0x1

struct img_prologue {
	char magic[8];
	uint16_t major;
	uint16_t minor;
	uint32_t prologue_hash; /* XXH32 of the 12 bytes above */
} __attribute__((packed));

struct img_rec_hdr {
	uint32_t type;
	uint32_t flags;
	uint64_t len;
	uint64_t hash; /* XXH64 of the payload (0 with IMG_RF_HASH_NEXT) */
	uint32_t reserved;
	uint32_t hdr_hash; /* XXH32 of the 28 bytes above */
} __attribute__((packed));

/*
 * Page payload checksums: XXH3-64 of each IMG_PAGES_CHUNK bytes of an
 * IMG_PAGES payload (the last piece shorter).  Restore's copiers check a
 * piece where they copy it, while it is in cache; the pagemap's pages_hash
 * is then XXH3-64 of the array (page_sums_digest).
 */
#define IMG_PAGES_CHUNK_SHIFT 22
#define IMG_PAGES_CHUNK	      (1UL << IMG_PAGES_CHUNK_SHIFT)
struct page_sums {
	uint64_t *chunk;   /* one per piece */
	size_t n;	   /* pieces of the payload */
	size_t done;	   /* pieces hashed so far (streaming) */
	uint64_t in_piece; /* bytes of the next piece hashed so far */
	XXH3_state_t *st;
};
/* For a payload of len bytes: n set, chunk allocated (zeroed). */
void page_sums_init(struct page_sums *s, uint64_t len);
/* The next bytes of the payload, in order, cut at the pieces' edges. */
void page_sums_update(struct page_sums *s, const void *buf, uint64_t len);
/* After the last update: hash the short last piece; every piece hashed? */
bool page_sums_finish(struct page_sums *s);
uint64_t page_sums_digest(const uint64_t *chunk, size_t n);
size_t page_sums_count(uint64_t len);
void page_sums_free(struct page_sums *s);

struct img_writer {
	int fd;
	char *dir;
	char *tmp_path;
	char *path;
	uint64_t off;
	uint64_t nrec;
	uint64_t page_bytes;
	XXH64_state_t *stream;
	/* an IMG_PAGES record being streamed */
	uint64_t pages_left;
	struct page_sums sums;
	struct img_page_pipe *pipe; /* large records: a writer thread */
	void *sync_buf;		    /* small records: written at once from here */
	bool pages_sync;
	char *wbuf; /* records not written yet (IMG_WBUF bytes) */
	size_t wlen;
	bool pages_hdr_done; /* img_pages_map wrote the header */
};

#define IMG_WBUF (64UL << 10)

int img_writer_open(struct img_writer *w, const char *dir);
int img_write_msg(struct img_writer *w, uint32_t type, const ProtobufCMessage *msg);
int img_write_raw(struct img_writer *w, uint32_t type, const void *buf, uint64_t len);
/*
 * Stream one IMG_PAGES record of len bytes: begin, feed exactly len, end.
 * A second thread hashes and writes the pages while the caller gathers
 * the next ones: take a buffer with img_pages_buf(), fill up to
 * IMG_PAGES_BUF bytes, hand it back with img_pages_submit().
 */
#define IMG_PAGES_BUF (1UL << 20)
int img_pages_begin(struct img_writer *w, uint64_t len);
void *img_pages_buf(struct img_writer *w);
int img_pages_submit(struct img_writer *w, void *buf, uint64_t len);
int img_pages_feed(struct img_writer *w, const void *buf, uint64_t len);
/* Its checksums are valid (and handed over in *sums) only if this returns 0. */
int img_pages_end(struct img_writer *w, struct page_sums *sums);
/*
 * Or, for workers: the payload mapped from the image file (header written),
 * filled and hashed by the caller, then unmapped.  NULL and *err == 0: not
 * mappable, stream it with img_pages_begin() instead.
 */
void *img_pages_map(struct img_writer *w, uint64_t len, int *err);
int img_pages_unmap(struct img_writer *w, void *map, uint64_t len, bool ok);
/* Write the trailer and make the image visible under its final name. */
int img_writer_commit(struct img_writer *w);
/* Drop a partly written image; leaves nothing behind. */
void img_writer_abort(struct img_writer *w);

struct img_reader {
	int fd;
	char *path;
	uint64_t off;
	uint64_t size;
	uint64_t nrec;
	uint16_t major, minor;
	XXH64_state_t *stream;
	bool trailer_seen;
	char *rbuf; /* read ahead (IMG_WBUF bytes): rbuf[rpos, rlen) is the file at off */
	size_t rpos, rlen;
};

int img_reader_open(struct img_reader *r, const char *dir);
void img_reader_close(struct img_reader *r);
/* Next record header; 1 at a valid end (after the trailer), -1 on error. */
int img_next(struct img_reader *r, struct img_rec_hdr *h);
/* Read and verify the payload of the current record into a malloc'ed buffer. */
int img_read_payload(struct img_reader *r, const struct img_rec_hdr *h, void **buf);
/* Skip the payload (page data); *payload_off gets its offset in the file. */
int img_skip_payload(struct img_reader *r, const struct img_rec_hdr *h, uint64_t *payload_off);
/* Unpack the current record's payload as a protobuf message. */
void *img_read_msg(struct img_reader *r, const struct img_rec_hdr *h,
		   const ProtobufCMessageDescriptor *desc);

const char *img_rec_name(uint32_t type);
uint64_t img_hash_pages(const void *buf, uint64_t len);

#endif

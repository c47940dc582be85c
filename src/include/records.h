/*
 * The table of record kinds (src/image/records.c): for each record type of
 * the image its name, the protobuf message its payload holds (none for raw
 * payloads: pages, file contents, pads) and the function that attaches a
 * loaded record to struct image.  The writer, the loader and `stasis show`
 * all go through it, so a new kind of record is one line there.
 */
#ifndef STASIS_RECORDS_H
#define STASIS_RECORDS_H

#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "image.h"
#include "fd.pb-c.h"
#include "header.pb-c.h"
#include "mm.pb-c.h"

struct image;

/*
 * load: attach one record to img.  For a kind with a message, msg is the
 * decoded payload, now owned by load (kept, or freed on error); for a raw
 * kind, msg is NULL and load reads or skips the payload itself.
 */
typedef int (*img_rec_load_fn)(struct image *img, const struct img_rec_hdr *h, void *msg);

struct img_rec_kind {
	uint32_t type;
	const char *name;
	const ProtobufCMessageDescriptor *desc; /* NULL: raw payload */
	img_rec_load_fn load;
};

/* The kind of a record type; NULL for types this stasis does not know. */
const struct img_rec_kind *img_rec_kind(uint32_t type);

/* load functions of the table (src/image/load.c) */
int rec_load_header(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_trailer(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_skip(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_task(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_thread_core(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_mm(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_pagemap(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_pages(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_file(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_fd(struct image *img, const struct img_rec_hdr *h, void *msg);
int rec_load_posix_timers(struct image *img, const struct img_rec_hdr *h, void *msg);

/* bounds on what records say (src/image/check.c); -1 after one error line */
int check_header(struct image *img, const ImageHeader *h);
int check_mm(struct image *img, const MmEntry *mm);
int check_pagemap(struct image *img, const PagemapEntry *pm, uint64_t pages_len);
int check_fd(struct image *img, const FdEntry *fd);
int check_file(struct image *img, const FileEntry *fe);

#endif

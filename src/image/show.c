/*
 * `stasis show`: decode an image.  --json prints every record as JSON,
 * generically from the protobuf descriptors, so new fields appear without
 * code here; the default is a short human summary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "files.h"
#include "log.h"
#include "records.h"
#include "stasis.h"
#include "util.h"

static void json_string(FILE *f, const char *s, size_t len)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < len; i++) {
		unsigned char ch = s[i];

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_message(FILE *f, const ProtobufCMessage *m);

static void json_scalar(FILE *f, const ProtobufCFieldDescriptor *fd, const void *p)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(f, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(f, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(f, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(f, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(f, "%g", *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(f, "%g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(fd->descriptor, *(const int *)p);

		if (ev)
			json_string(f, ev->name, strlen(ev->name));
		else
			fprintf(f, "%d", *(const int *)p);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		if (s)
			json_string(f, s, strlen(s));
		else
			fputs("null", f);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		size_t i;

		fputc('"', f);
		for (i = 0; i < b->len; i++)
			fprintf(f, "%02x", b->data[i]);
		fputc('"', f);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		json_message(f, *(ProtobufCMessage *const *)p);
		break;
	}
}

static size_t scalar_size(const ProtobufCFieldDescriptor *fd)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static void json_message(FILE *f, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d;
	const char *base = (const char *)m;
	unsigned int i;
	bool first = true;

	if (!m) {
		fputs("null", f);
		return;
	}
	d = m->descriptor;
	fputc('{', f);
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const void *p = base + fd->offset;

		if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			/* a member of a oneof: its case says which one is set */
			if (*(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
				continue;
		} else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL) {
			if (fd->quantifier_offset &&
			    !*(const protobuf_c_boolean *)(base + fd->quantifier_offset))
				continue;
			if ((fd->type == PROTOBUF_C_TYPE_STRING ||
			     fd->type == PROTOBUF_C_TYPE_MESSAGE) &&
			    !*(void *const *)p)
				continue;
		}
		fprintf(f, "%s\"%s\":", first ? "" : ",", fd->name);
		first = false;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + fd->quantifier_offset), k;
			const char *arr = *(char *const *)p;

			fputc('[', f);
			for (k = 0; k < n; k++) {
				if (k)
					fputc(',', f);
				json_scalar(f, fd, arr + k * scalar_size(fd));
			}
			fputc(']', f);
		} else {
			json_scalar(f, fd, p);
		}
	}
	fputc('}', f);
}

static int show_json(const char *dir)
{
	struct img_reader r;
	struct img_rec_hdr h;
	bool first = true;
	int ret;

	if (img_reader_open(&r, dir))
		return -1;
	printf("{\"format\":\"%u.%u\",\"records\":[", r.major, r.minor);
	while ((ret = img_next(&r, &h)) == 0) {
		const struct img_rec_kind *k = img_rec_kind(h.type);
		const ProtobufCMessageDescriptor *d = k ? k->desc : NULL;

		printf("%s\n{\"type\":\"%s\",\"length\":%" PRIu64, first ? "" : ",",
		       img_rec_name(h.type), h.len);
		first = false;
		if (d) {
			ProtobufCMessage *m = img_read_msg(&r, &h, d);

			if (!m) {
				ret = -1;
				break;
			}
			printf(",\"data\":");
			json_message(stdout, m);
			protobuf_c_message_free_unpacked(m, NULL);
		} else {
			uint64_t off;

			if (img_skip_payload(&r, &h, &off)) {
				ret = -1;
				break;
			}
			printf(",\"offset\":%" PRIu64, off);
		}
		printf("}");
	}
	printf("\n]}\n");
	img_reader_close(&r);
	return ret < 0 ? -1 : 0;
}

static const char *vma_kind_name(VmaKind k)
{
	static const char *const names[] = { "?",    "anon",	    "anon-shared",
					     "file", "file-shared", "special" };

	if (k == VMA_KIND__VMA_SYSV_SHM)
		return "sysv-shm";
	return (unsigned)k < ARRAY_SIZE(names) ? names[k] : "?";
}

static void show_task(struct image *img, struct rst_task *t)
{
	TaskEntry *te = t->te;
	size_t i;

	if (te->zombie) {
		printf("process %u (%s): zombie, ppid %u pgid %u sid %u, wait status %#x\n",
		       te->pid, te->comm, te->ppid, te->pgid, te->sid, te->exit_code);
		return;
	}
	printf("process %u (%s): ppid %u pgid %u sid %u, %zu thread(s), cwd %s\n", te->pid,
	       te->comm, te->ppid, te->pgid, te->sid, t->ncores, te->cwd);
	printf("  %zu signal handlers, %zu process-wide pending signals\n", te->n_sigactions,
	       te->n_shared_pending);
	for (i = 0; i < t->ncores; i++) {
		ThreadCore *c = t->cores[i];

		printf(
		    "  thread %u (%s): ip %#llx sp %#llx, xstate %zu bytes, %zu pending signals\n",
		    c->tid, c->name ? c->name : "?", (unsigned long long)c->regs->ip,
		    (unsigned long long)c->regs->sp, c->xstate.len, c->n_pending);
	}
	printf("  memory: %zu mappings, %llu pages saved (%.1f MiB) in %zu runs\n", t->mm->n_vmas,
	       (unsigned long long)t->pm->nr_pages, t->pm->nr_pages * 4096.0 / (1 << 20),
	       t->pm->n_runs);
	for (i = 0; i < t->mm->n_vmas; i++) {
		VmaEntry *v = t->mm->vmas[i];
		const char *name = v->name ? v->name : "";
		char shm[32];
		size_t k;

		if (v->kind == VMA_KIND__VMA_SYSV_SHM) {
			snprintf(shm, sizeof(shm), "shmid %u%s", v->shmid,
				 v->shm_rdonly ? " SHM_RDONLY" : "");
			name = shm;
		}

		for (k = 0; k < t->mm->n_files; k++)
			if (v->has_file_id && v->file_id == t->mm->files[k]->id &&
			    (v->kind == VMA_KIND__VMA_FILE_PRIVATE ||
			     v->kind == VMA_KIND__VMA_FILE_SHARED))
				name = t->mm->files[k]->path;
		printf("    %012llx-%012llx %c%c%c %-11s %s\n", (unsigned long long)v->start,
		       (unsigned long long)v->end, v->prot & PROT_READ ? 'r' : '-',
		       v->prot & PROT_WRITE ? 'w' : '-', v->prot & PROT_EXEC ? 'x' : '-',
		       vma_kind_name(v->kind), name);
	}
	printf("  fds:\n");
	for (i = 0; i < t->nfds; i++) {
		FileEntry *fe = image_file(img, t->fds[i]->file_id);
		const struct fd_ops *ops = fe ? fd_kind(fe->type) : NULL;
		char buf[64];
		const char *key =
		    ops && ops->inherit_key ? ops->inherit_key(fe, buf, sizeof(buf)) : NULL;

		if (key)
			printf("    %3u -> %s (external)\n", t->fds[i]->fd, key);
		else
			printf("    %3u -> %s (%s)\n", t->fds[i]->fd,
			       fe && fe->path ? fe->path : "?", ops ? ops->name : "unknown kind");
	}
}

int cmd_show(const char *dir, bool json)
{
	struct image img;
	size_t i;

	if (json)
		return show_json(dir);
	if (image_load(dir, &img))
		return -1;
	printf("image %s: format %u.%u, %s, kernel %s, stasis %s, %zu process(es)\n", img.r.path,
	       img.r.major, img.r.minor, img.hdr->arch, img.hdr->kernel_release,
	       img.hdr->tool_version, img.ntasks);
	for (i = 0; i < img.ntasks; i++)
		show_task(&img, &img.tasks[i]);
	image_free(&img);
	return 0;
}

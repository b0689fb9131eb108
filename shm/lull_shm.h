/* SPDX-License-Identifier: MIT */
/*
 * lull_shm.h - the shared-memory ABI between Xen's scheduler and lulld in dom0.
 *
 * One header, included by the hypervisor (C, no libc, built with -D__XEN__), by
 * dom0's C++ (through shm/ring.h) and by test tools. Everything in the shared region is
 * fixed-width, explicitly padded, little-endian (x86), and reached by byte offsets,
 * never pointers: the two sides map it at different addresses.
 *
 * DESIGN
 *
 * A region holds three things, in this order after a 64-byte region header:
 *
 *   telemetry rings   one per physical CPU, Xen -> dom0: vCPU wake/block/run events.
 *                     Per-pCPU rings make each one single-producer without a lock: the
 *                     scheduler on pCPU N is the only writer of ring N.
 *   command ring      dom0 -> Xen: "lease slot S changed", revoke requests, hints.
 *   lease table       written by dom0 under a per-entry sequence lock, read by Xen
 *                     without locks; Xen answers in a word of each entry that only it
 *                     writes (see LEASES below).
 *
 * RINGS
 *
 * Single producer, single consumer, fixed-size records, capacity a power of two.
 * Indices are free-running 64-bit counts; a record's slot is index & (capacity - 1).
 * With 64 bits they never wrap in practice (2^64 records at 10^9 a second is 584 years),
 * which makes "how full" a plain subtraction and removes the classic one-slot gap.
 *
 *   prod   written by the producer only: the number of records published. Stored with
 *          RELEASE after the records it covers are written, so a consumer that loads it
 *          with ACQUIRE sees those records whole.
 *   cons   written by the consumer only: the number of records it is done with. Stored
 *          with RELEASE after it has copied them out, so a producer that loads it with
 *          ACQUIRE never overwrites a slot that is still being read.
 *   dropped  written by the producer only: records it could not publish because the
 *          ring was full. The producer never blocks and never waits for the consumer.
 *
 * prod, dropped and cons live on separate 64-byte cache lines so that the two sides do
 * not invalidate each other's line on every update (false sharing). Each side keeps a
 * private cached copy of the other side's index and reloads it only when the cache says
 * the ring is full (producer) or empty (consumer): on a busy ring most operations touch
 * no line the other core writes. Publication can be batched: push N records, then one
 * publish (one release store) for all of them.
 *
 * TRUST
 *
 * Neither side trusts the other. Each side validates the geometry once, when it attaches,
 * and keeps its own private copy (capacity, record size, data offset); it never re-reads
 * geometry from shared memory afterwards, so a later scribble over the header cannot move
 * its accesses. Every index the other side writes is checked before use:
 *
 *   consumer: prod must satisfy cons <= prod <= cons + capacity. Otherwise the consumer
 *             counts an error and returns -EPROTO; a prod too far ahead makes it skip
 *             to that position (dropping what it cannot trust), a prod behind cons is
 *             never followed: the consumer's index only moves forward, so no record is
 *             ever returned twice. Each record is copied out first and
 *             then checked: its seq field must equal the low 32 bits of its index, which
 *             catches stale slots from an earlier lap and a prod that ran ahead of the
 *             data. A bad record is dropped and counted, never returned.
 *   producer: cons must satisfy prod - capacity <= cons <= prod. Otherwise the
 *             producer treats the ring as full (drops and counts, never overwrites
 *             unread data on the word of a corrupt index) until cons is sane again.
 *
 * Every slot address is computed from the private mask, so no value in shared memory can
 * direct a read or write outside the ring. Loops are bounded by the private capacity.
 *
 * LEASES
 *
 * A lease lends capacity of guest `lender` to domain `borrower` until `expires_ns` (Xen's
 * NOW() clock). Each table entry is one cache line:
 *
 *   dom0 half (bytes 0-39), written only by dom0, under the entry's sequence lock:
 *     seq        even when stable, odd while dom0 is writing. dom0: seq++ (odd),
 *                fields with RELEASE stores, seq++ (even) with RELEASE. Xen: load seq
 *                ACQUIRE, fields with ACQUIRE loads, reload seq; retry if it was odd or
 *                changed, at most LULL_LEASE_READ_TRIES times, then treat the entry as
 *                absent (a writer that never finishes cannot stall the scheduler).
 *                (Per-field ordering instead of fences: same code on x86, and
 *                ThreadSanitizer can check it.)
 *     id         nonzero while the entry holds a lease; unique per lease (dom0 counts).
 *     state      LULL_LEASE_FREE or LULL_LEASE_ACTIVE: dom0's intent.
 *   Xen half (bytes 40-63), written only by Xen:
 *     revoked_id the id of the lease Xen revoked in this entry, 0 if none.
 *     revoked_ns when (NOW()) it revoked it.
 *
 * The effective state of an entry, as both sides compute it from what they read:
 *
 *   FREE      state == FREE                                   (set by dom0: release)
 *   ACTIVE    state == ACTIVE, id != revoked_id, now < expires_ns (set by dom0: grant)
 *   REVOKED   state == ACTIVE, id == revoked_id   (set by Xen: the lender woke; dom0
 *             reads it, accounts the revocation, and frees the entry)
 *   EXPIRED   state == ACTIVE, id != revoked_id, now >= expires_ns (by time alone:
 *             if lulld dies, every lease ends by itself within one lease period)
 *
 * A single writer per word means no compare-and-swap crosses the trust boundary.
 *
 * NUMERIC BOUNDS
 *
 *   capacity      2^4 .. 2^24 records: at least a burst of one scheduling period, at most
 *                 a 512 MiB ring of 32-byte records, far above any useful backlog.
 *   record size   8 .. 256 bytes, a multiple of 8 (aligned 64-bit fields, whole words).
 *   telemetry rings  1 .. 4096 (Xen's NR_CPUS limit on x86).
 *   leases        1 .. 4096 entries; 64 bytes each, so at most 256 KiB.
 *   region size   < 2^32 bytes: every offset fits a uint32_t.
 *
 * ERRORS are negative errno values (-EINVAL bad argument or geometry, -LULL_EPROTO, which
 * is -EPROTO wherever EPROTO exists, the other side broke the protocol, -ENOSPC ring
 * full, -EBUSY a lease entry stayed mid-write).
 */
#ifndef LULL_SHM_H
#define LULL_SHM_H

#ifdef __XEN__
#include <xen/types.h>
#include <xen/errno.h>
#else
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#endif

/* "The other side broke the protocol". Xen's errno.h has no EPROTO, so the header
 * brings its own value (Linux's) where there is none and stands alone in Xen; elsewhere
 * it is the system's EPROTO, so C++ callers may compare with -EPROTO. */
#ifdef EPROTO
#define LULL_EPROTO EPROTO
#else
#define LULL_EPROTO 71
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define LULL_SHM_MAGIC        0x4c4c554cu /* "LULL" in memory order */
#define LULL_SHM_VERSION      1u
#define LULL_CACHELINE        64u

#define LULL_RING_MIN_CAP     (1u << 4)
#define LULL_RING_MAX_CAP     (1u << 24)
#define LULL_REC_MIN_SIZE     8u
#define LULL_REC_MAX_SIZE     256u
#define LULL_MAX_TEL_RINGS    4096u
#define LULL_MAX_LEASES       4096u
#define LULL_LEASE_READ_TRIES 4u

/* Domain ids at or above this are Xen's reserved ids (DOMID_FIRST_RESERVED). */
#define LULL_DOMID_LIMIT      0x7FF0u

/* ------------------------------------------------------------------------------------
 * Shared layout
 * ---------------------------------------------------------------------------------- */

/* Ring header: three cache lines, then capacity * record_size bytes of records. */
struct lull_ring_hdr {
	/* Line 0: geometry. Written once by the creator before the region is shared. */
	uint32_t magic;
	uint16_t version;
	uint16_t record_size;
	uint32_t capacity;
	uint32_t reserved0;
	uint8_t  pad0[LULL_CACHELINE - 16];
	/* Line 1: producer-owned. */
	uint64_t prod;
	uint64_t dropped;
	uint8_t  pad1[LULL_CACHELINE - 16];
	/* Line 2: consumer-owned. */
	uint64_t cons;
	uint8_t  pad2[LULL_CACHELINE - 8];
};

/* Region header: one cache line at offset 0. Offsets are from the region's start. */
struct lull_shm_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;      /* sizeof(struct lull_shm_hdr), for forward compatibility */
	uint32_t total_size;    /* bytes in the region */
	uint16_t n_tel;         /* telemetry rings, one per physical CPU */
	uint16_t n_leases;      /* lease table entries */
	uint32_t tel_off;       /* first telemetry ring */
	uint32_t tel_stride;    /* bytes from one telemetry ring to the next */
	uint32_t tel_capacity;  /* records per telemetry ring */
	uint32_t cmd_off;       /* the command ring */
	uint32_t cmd_capacity;
	uint32_t lease_off;     /* the lease table */
	uint64_t epoch;         /* set by the creator; changes when the region is rebuilt */
	uint8_t  pad[LULL_CACHELINE - 48];
};

/* Telemetry record types (struct lull_tel_rec.type). */
enum lull_tel_type {
	LULL_TEL_WAKE = 1,       /* vCPU became runnable; arg = ns it was blocked */
	LULL_TEL_BLOCK = 2,      /* vCPU blocked; arg = ns it ran since it was scheduled */
	LULL_TEL_RUN = 3,        /* vCPU scheduled on pcpu; arg = ns it waited runnable */
	LULL_TEL_DESCHED = 4,    /* vCPU preempted, still runnable; arg = ns it ran */
	LULL_TEL_LEASE_REVOKED = 5, /* Xen revoked lease table slot `vcpu`; arg = lease id */
	LULL_TEL_ACCT = 6,       /* accounting tick for domid; credit = credit handed out */
	LULL_TEL_TYPE_MAX = 6
};

/* One telemetry record: 32 bytes, 8-byte aligned fields. */
struct lull_tel_rec {
	uint32_t seq;     /* low 32 bits of this record's ring index (set by push) */
	uint8_t  type;    /* enum lull_tel_type */
	uint8_t  pri;     /* credit priority after the event, biased by +64 (0..64) */
	uint16_t pcpu;
	uint16_t domid;
	uint16_t vcpu;
	int32_t  credit;  /* the vCPU's credit after the event */
	uint64_t time_ns; /* Xen's NOW() */
	uint64_t arg;     /* per type, see enum lull_tel_type */
};

/* Command record types (struct lull_cmd_rec.type), dom0 -> Xen. */
enum lull_cmd_type {
	LULL_CMD_LEASE_CHANGED = 1, /* re-read lease table slot `slot` */
	LULL_CMD_HINT_IDLE = 2,     /* domid predicted idle until until_ns; value = p(idle) in 1/1000 */
	LULL_CMD_HINT_BUSY = 3,     /* domid predicted busy from until_ns; value as above */
	LULL_CMD_TYPE_MAX = 3
};

struct lull_cmd_rec {
	uint32_t seq;      /* low 32 bits of this record's ring index (set by push) */
	uint8_t  type;     /* enum lull_cmd_type */
	uint8_t  pad0;
	uint16_t slot;     /* lease table slot, for LEASE_CHANGED */
	uint16_t domid;    /* for hints */
	uint16_t pad1;
	uint32_t value;
	uint64_t until_ns;
	uint64_t arg;
};

enum lull_lease_state {
	LULL_LEASE_FREE = 0,
	LULL_LEASE_ACTIVE = 1,
	/* Effective states only, never stored in `state`: */
	LULL_LEASE_REVOKED = 2,
	LULL_LEASE_EXPIRED = 3
};

/* One lease table entry: one cache line. See LEASES above for who writes what. */
struct lull_lease {
	/* dom0 half */
	uint32_t seq;
	uint32_t state;       /* enum lull_lease_state: FREE or ACTIVE */
	uint64_t id;
	uint16_t lender;
	uint16_t borrower;
	uint32_t credit;      /* credits per 30 ms accounting period lent, <= LULL_LEASE_MAX_CREDIT */
	uint64_t expires_ns;
	uint64_t granted_ns;
	/* Xen half */
	uint64_t revoked_id;
	uint64_t revoked_ns;
	uint64_t xen_reserved;
};

/* A lease as a plain value: what a reader copies out of an entry. */
struct lull_lease_val {
	uint64_t id;
	uint32_t state;
	uint16_t lender;
	uint16_t borrower;
	uint32_t credit;
	uint32_t pad;
	uint64_t expires_ns;
	uint64_t granted_ns;
};

/* 300 credits per 30 ms slice per pCPU (CSCHED_CREDITS_PER_MSEC 10) times NR_CPUS 4096. */
#define LULL_LEASE_MAX_CREDIT (300u * 4096u)

/* The ABI is the layout: any change here is a version bump. */
#ifdef __cplusplus
#define LULL_STATIC_ASSERT static_assert
#else
#define LULL_STATIC_ASSERT _Static_assert
#endif
LULL_STATIC_ASSERT(sizeof(struct lull_ring_hdr) == 3 * LULL_CACHELINE, "ring header is 3 lines");
LULL_STATIC_ASSERT(sizeof(struct lull_shm_hdr) == LULL_CACHELINE, "region header is 1 line");
LULL_STATIC_ASSERT(sizeof(struct lull_tel_rec) == 32, "telemetry record is 32 bytes");
LULL_STATIC_ASSERT(sizeof(struct lull_cmd_rec) == 32, "command record is 32 bytes");
LULL_STATIC_ASSERT(sizeof(struct lull_lease) == LULL_CACHELINE, "lease entry is 1 line");
LULL_STATIC_ASSERT(__builtin_offsetof(struct lull_lease, revoked_id) == 40, "Xen half at byte 40");

/* ------------------------------------------------------------------------------------
 * Atomics. GCC/Clang builtins: no libc, the same code in Xen and in user space. On x86
 * an ACQUIRE load and a RELEASE store are plain moves that only stop the compiler from
 * reordering; what they order is documented at each use.
 * ---------------------------------------------------------------------------------- */
#define LULL_LOAD_ACQ(p)      __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LULL_LOAD_RLX(p)      __atomic_load_n((p), __ATOMIC_RELAXED)
#define LULL_STORE_REL(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define LULL_STORE_RLX(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static inline int lull_is_pow2(uint32_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* ------------------------------------------------------------------------------------
 * Layout: sizes and offsets, and formatting a fresh region (creator side only).
 * ---------------------------------------------------------------------------------- */

struct lull_shm_geom {
	uint32_t n_tel;         /* telemetry rings */
	uint32_t tel_capacity;  /* records per telemetry ring, power of two */
	uint32_t cmd_capacity;  /* records in the command ring, power of two */
	uint32_t n_leases;      /* lease table entries */
};

static inline uint64_t lull_ring_bytes(uint32_t capacity, uint32_t record_size)
{
	return (uint64_t)sizeof(struct lull_ring_hdr) + (uint64_t)capacity * record_size;
}

static inline int lull_geom_check(const struct lull_shm_geom *g)
{
	if (g->n_tel < 1 || g->n_tel > LULL_MAX_TEL_RINGS)
		return -EINVAL;
	if (!lull_is_pow2(g->tel_capacity) || g->tel_capacity < LULL_RING_MIN_CAP ||
	    g->tel_capacity > LULL_RING_MAX_CAP)
		return -EINVAL;
	if (!lull_is_pow2(g->cmd_capacity) || g->cmd_capacity < LULL_RING_MIN_CAP ||
	    g->cmd_capacity > LULL_RING_MAX_CAP)
		return -EINVAL;
	if (g->n_leases < 1 || g->n_leases > LULL_MAX_LEASES)
		return -EINVAL;
	return 0;
}

/* Bytes a region of this geometry needs, or 0 when the geometry is invalid or the region
 * would not fit the 32-bit offsets. Everything is cache-line aligned. */
static inline uint64_t lull_shm_size(const struct lull_shm_geom *g)
{
	uint64_t tel, total;

	if (lull_geom_check(g))
		return 0;
	tel = lull_ring_bytes(g->tel_capacity, sizeof(struct lull_tel_rec));
	total = sizeof(struct lull_shm_hdr) + tel * g->n_tel +
		lull_ring_bytes(g->cmd_capacity, sizeof(struct lull_cmd_rec)) +
		(uint64_t)g->n_leases * sizeof(struct lull_lease);
	return total > 0xffffffffull ? 0 : total;
}

static inline void lull__zero(void *p, uint64_t n)
{
	uint8_t *b = (uint8_t *)p;
	while (n--)
		*b++ = 0;
}

static inline void lull__ring_format(struct lull_ring_hdr *r, uint32_t cap, uint32_t rsz)
{
	lull__zero(r, lull_ring_bytes(cap, rsz));
	r->magic = LULL_SHM_MAGIC;
	r->version = LULL_SHM_VERSION;
	r->record_size = (uint16_t)rsz;
	r->capacity = cap;
}

/* Format `mem` (size bytes, 64-byte aligned, not yet shared) as a fresh region. */
static inline int lull_shm_format(void *mem, uint64_t size, const struct lull_shm_geom *g,
				  uint64_t epoch)
{
	struct lull_shm_hdr *h = (struct lull_shm_hdr *)mem;
	uint64_t need = lull_shm_size(g), tel;
	uint8_t *base = (uint8_t *)mem;
	uint32_t i;

	if (!need || size < need || ((uintptr_t)mem & (LULL_CACHELINE - 1)))
		return -EINVAL;
	tel = lull_ring_bytes(g->tel_capacity, sizeof(struct lull_tel_rec));
	lull__zero(h, sizeof(*h));
	h->hdr_size = sizeof(*h);
	h->total_size = (uint32_t)need;
	h->n_tel = (uint16_t)g->n_tel;
	h->n_leases = (uint16_t)g->n_leases;
	h->tel_off = sizeof(*h);
	h->tel_stride = (uint32_t)tel;
	h->tel_capacity = g->tel_capacity;
	h->cmd_off = (uint32_t)(h->tel_off + tel * g->n_tel);
	h->cmd_capacity = g->cmd_capacity;
	h->lease_off = (uint32_t)(h->cmd_off +
		lull_ring_bytes(g->cmd_capacity, sizeof(struct lull_cmd_rec)));
	h->epoch = epoch;
	for (i = 0; i < g->n_tel; i++)
		lull__ring_format((struct lull_ring_hdr *)(base + h->tel_off + (uint64_t)i * tel),
				  g->tel_capacity, sizeof(struct lull_tel_rec));
	lull__ring_format((struct lull_ring_hdr *)(base + h->cmd_off), g->cmd_capacity,
			  sizeof(struct lull_cmd_rec));
	lull__zero(base + h->lease_off, (uint64_t)g->n_leases * sizeof(struct lull_lease));
	h->version = LULL_SHM_VERSION;
	/* The magic last: a region with the magic is fully formatted. */
	LULL_STORE_REL(&h->magic, LULL_SHM_MAGIC);
	return 0;
}

/* A validated, private copy of a region's layout. Fill it with lull_shm_attach() and use
 * only it afterwards; never the shared header again. */
struct lull_shm_view {
	uint8_t *base;
	uint64_t size;
	struct lull_shm_geom geom;
	uint32_t tel_off, tel_stride, cmd_off, lease_off;
	uint64_t epoch;
};

/* Validate a region someone else formatted (or scribbled on). Checks the magic,
 * version, that the geometry is within bounds, that every offset is where the layout
 * puts it, that each ring's header agrees, and that it all fits in `size`. */
static inline int lull_shm_attach(void *mem, uint64_t size, struct lull_shm_view *v)
{
	const struct lull_shm_hdr *h = (const struct lull_shm_hdr *)mem;
	struct lull_shm_hdr c;  /* a private copy: the header could change under us */
	uint64_t need, tel;

	if (!mem || size < sizeof(c) || ((uintptr_t)mem & (LULL_CACHELINE - 1)))
		return -EINVAL;
	if (LULL_LOAD_ACQ(&h->magic) != LULL_SHM_MAGIC)
		return -LULL_EPROTO;
	__builtin_memcpy(&c, h, sizeof(c));
	if (c.magic != LULL_SHM_MAGIC || c.version != LULL_SHM_VERSION ||
	    c.hdr_size != sizeof(c))
		return -LULL_EPROTO;
	v->geom.n_tel = c.n_tel;
	v->geom.tel_capacity = c.tel_capacity;
	v->geom.cmd_capacity = c.cmd_capacity;
	v->geom.n_leases = c.n_leases;
	need = lull_shm_size(&v->geom);
	if (!need || need != c.total_size || need > size)
		return -LULL_EPROTO;
	tel = lull_ring_bytes(c.tel_capacity, sizeof(struct lull_tel_rec));
	if (c.tel_off != sizeof(c) || c.tel_stride != tel ||
	    c.cmd_off != c.tel_off + tel * c.n_tel ||
	    c.lease_off != c.cmd_off + lull_ring_bytes(c.cmd_capacity, sizeof(struct lull_cmd_rec)))
		return -LULL_EPROTO;
	v->base = (uint8_t *)mem;
	v->size = need;
	v->tel_off = c.tel_off;
	v->tel_stride = c.tel_stride;
	v->cmd_off = c.cmd_off;
	v->lease_off = c.lease_off;
	v->epoch = c.epoch;
	return 0;
}

static inline void *lull_shm_tel_ring(const struct lull_shm_view *v, uint32_t i)
{
	return i < v->geom.n_tel ? v->base + v->tel_off + (uint64_t)i * v->tel_stride : NULL;
}

static inline void *lull_shm_cmd_ring(const struct lull_shm_view *v)
{
	return v->base + v->cmd_off;
}

static inline struct lull_lease *lull_shm_lease(const struct lull_shm_view *v, uint32_t i)
{
	return i < v->geom.n_leases ?
		(struct lull_lease *)(v->base + v->lease_off) + i : NULL;
}

/* ------------------------------------------------------------------------------------
 * Rings. Each side holds its private state in a struct of its own, initialised from the
 * ring's header once; the header's geometry is trusted only as far as the caller's
 * expectations (capacity and record size passed in must match it).
 * ---------------------------------------------------------------------------------- */

/* Validate a ring header against what the caller expects: `capacity` and `record_size`
 * are what the caller's private view says (from a validated region, or its own). */
static inline int lull__ring_check(const struct lull_ring_hdr *r, uint64_t bytes,
				   uint32_t capacity, uint32_t record_size)
{
	if (!r || ((uintptr_t)r & 7))
		return -EINVAL;
	if (!lull_is_pow2(capacity) || capacity < LULL_RING_MIN_CAP ||
	    capacity > LULL_RING_MAX_CAP || record_size < LULL_REC_MIN_SIZE ||
	    record_size > LULL_REC_MAX_SIZE || (record_size & 7) ||
	    bytes < lull_ring_bytes(capacity, record_size))
		return -EINVAL;
	if (LULL_LOAD_RLX(&r->magic) != LULL_SHM_MAGIC ||
	    LULL_LOAD_RLX(&r->version) != LULL_SHM_VERSION ||
	    LULL_LOAD_RLX(&r->capacity) != capacity ||
	    LULL_LOAD_RLX(&r->record_size) != record_size)
		return -LULL_EPROTO;
	return 0;
}

/* Each side's private state (struct lull_prod, struct lull_cons) takes whole cache lines
 * of its own. The side writes it on every push or pop; were it to share a line with
 * anything the other side, or another producer, touches (the two ends of a ring in one
 * process, or Xen's array of per-pCPU producers), every record would pay a line
 * transfer that the shared layout above was designed to avoid. Private, never in the
 * shared region: not part of the ABI. */
#define LULL_PRIVATE __attribute__((aligned(LULL_CACHELINE)))

/* Producer side. */
struct LULL_PRIVATE lull_prod {
	struct lull_ring_hdr *hdr;
	uint8_t *data;
	uint64_t prod;        /* private and authoritative: records pushed */
	uint64_t published;   /* the last value stored to hdr->prod */
	uint64_t cons_cache;  /* last sane cons read from the consumer */
	uint64_t dropped;     /* private and authoritative: records dropped */
	uint64_t errors;      /* times the consumer's index was insane */
	uint32_t mask;
	uint32_t record_size;
};

LULL_STATIC_ASSERT(__alignof__(struct lull_prod) == LULL_CACHELINE &&
		   sizeof(struct lull_prod) % LULL_CACHELINE == 0, "producer state on its own lines");

/* Attach as the producer. Resumes from the published index: a producer that restarts
 * (dom0's side of the command ring after a daemon restart) continues where it left off,
 * after checking that index against cons. */
static inline int lull_prod_init(struct lull_prod *p, void *ring, uint64_t bytes,
				 uint32_t capacity, uint32_t record_size)
{
	struct lull_ring_hdr *r = (struct lull_ring_hdr *)ring;
	uint64_t prod, cons;
	int rc = lull__ring_check(r, bytes, capacity, record_size);

	if (rc)
		return rc;
	prod = LULL_LOAD_ACQ(&r->prod);
	cons = LULL_LOAD_ACQ(&r->cons);
	if (cons > prod || prod - cons > capacity)
		return -LULL_EPROTO;
	p->hdr = r;
	p->data = (uint8_t *)ring + sizeof(*r);
	p->prod = p->published = prod;
	p->cons_cache = cons;
	p->dropped = LULL_LOAD_RLX(&r->dropped);
	p->errors = 0;
	p->mask = capacity - 1;
	p->record_size = record_size;
	return 0;
}

/* Free slots, reloading the consumer's index. An insane index counts an error and
 * reports 0 free: the producer then drops rather than overwrite unread data. */
static inline uint32_t lull_prod_refresh(struct lull_prod *p)
{
	/* ACQUIRE: the consumer's copies out of the slots it released happen before our
	 * writes into them. */
	uint64_t cons = LULL_LOAD_ACQ(&p->hdr->cons);

	if (cons > p->prod || p->prod - cons > (uint64_t)p->mask + 1) {
		p->errors++;
		return 0;
	}
	p->cons_cache = cons;
	return (uint32_t)((uint64_t)p->mask + 1 - (p->prod - cons));
}

/* Free slots by the cached index: a lower bound, no shared access. */
static inline uint32_t lull_prod_free_cached(const struct lull_prod *p)
{
	return (uint32_t)((uint64_t)p->mask + 1 - (p->prod - p->cons_cache));
}

/* Push as many of the n records in `recs` as fit, in order; returns how many. Those
 * that did not fit are NOT counted as dropped: a caller that gives up on them calls
 * lull_prod_drop(). One look at the consumer's index for the whole batch. */
static inline uint32_t lull_prod_push_n(struct lull_prod *p, const void *recs, uint32_t n,
					uint32_t size)
{
	const uint8_t *src = (const uint8_t *)recs;
	uint32_t room = lull_prod_free_cached(p), i, seq;
	uint8_t *slot;

	if (room < n)
		room = lull_prod_refresh(p);
	if (n > room)
		n = room;
	for (i = 0; i < n; i++) {
		slot = p->data + (uint64_t)((p->prod + i) & p->mask) * size;
		__builtin_memcpy(slot, src + (uint64_t)i * size, size);
		seq = (uint32_t)(p->prod + i);
		__builtin_memcpy(slot, &seq, sizeof(seq));
	}
	p->prod += n;
	return n;
}

/* Count n records as dropped (the producer gave up on them). */
static inline void lull_prod_drop(struct lull_prod *p, uint32_t n)
{
	p->dropped += n;
	LULL_STORE_RLX(&p->hdr->dropped, p->dropped);
}

/* Push one record of `size` bytes (which must be the ring's record size; a constant at
 * the call site lets the compiler inline the copy). The first 4 bytes of the record are
 * overwritten with its seq. Not visible to the consumer until lull_prod_publish().
 * Returns 0, or -ENOSPC when full: the record is dropped and counted. */
static inline int lull_prod_push(struct lull_prod *p, const void *rec, uint32_t size)
{
	uint8_t *slot;
	uint32_t seq;

	if (p->prod - p->cons_cache > p->mask && !lull_prod_refresh(p)) {
		lull_prod_drop(p, 1);
		return -ENOSPC;
	}
	slot = p->data + (uint64_t)(p->prod & p->mask) * size;
	__builtin_memcpy(slot, rec, size);
	seq = (uint32_t)p->prod;
	__builtin_memcpy(slot, &seq, sizeof(seq));
	p->prod++;
	return 0;
}

/* Make every pushed record visible. RELEASE: the record writes above happen before the
 * consumer's ACQUIRE load of prod that sees this value. */
static inline void lull_prod_publish(struct lull_prod *p)
{
	if (p->published != p->prod) {
		LULL_STORE_REL(&p->hdr->prod, p->prod);
		p->published = p->prod;
	}
}

/* Consumer side. */
struct LULL_PRIVATE lull_cons {
	struct lull_ring_hdr *hdr;
	const uint8_t *data;
	uint64_t cons;        /* private and authoritative: records consumed */
	uint64_t released;    /* the last value stored to hdr->cons */
	uint64_t prod_cache;  /* last sane prod read from the producer */
	uint64_t errors;      /* protocol violations seen (insane prod, bad records) */
	uint64_t skipped;     /* records dropped because they could not be trusted */
	uint32_t mask;
	uint32_t record_size;
};

LULL_STATIC_ASSERT(__alignof__(struct lull_cons) == LULL_CACHELINE &&
		   sizeof(struct lull_cons) % LULL_CACHELINE == 0, "consumer state on its own lines");

/* Attach as the consumer; resumes from the released index after checking it. */
static inline int lull_cons_init(struct lull_cons *c, void *ring, uint64_t bytes,
				 uint32_t capacity, uint32_t record_size)
{
	struct lull_ring_hdr *r = (struct lull_ring_hdr *)ring;
	uint64_t prod, cons;
	int rc = lull__ring_check(r, bytes, capacity, record_size);

	if (rc)
		return rc;
	prod = LULL_LOAD_ACQ(&r->prod);
	cons = LULL_LOAD_RLX(&r->cons);
	c->hdr = r;
	c->data = (const uint8_t *)ring + sizeof(*r);
	c->errors = c->skipped = 0;
	c->mask = capacity - 1;
	c->record_size = record_size;
	if (cons > prod || prod - cons > capacity) {
		/* Our own index is not believable either: start at the producer's. */
		c->errors++;
		cons = prod;
	}
	c->cons = c->released = cons;
	c->prod_cache = prod;
	return 0;
}

/* Records available by a fresh look at prod, or -EPROTO when prod is insane. The
 * consumer's index only ever moves forward. */
static inline int64_t lull_cons_refresh(struct lull_cons *c)
{
	/* ACQUIRE: pairs with the producer's RELEASE in lull_prod_publish(), so the records
	 * below prod are fully written when we read them. */
	uint64_t prod = LULL_LOAD_ACQ(&c->hdr->prod);

	if (prod < c->cons) {
		/* Backwards: never follow it, so no record is ever returned twice. The
		 * ring stays silent (and each call says why) until prod passes cons. */
		c->errors++;
		return -LULL_EPROTO;
	}
	if (prod - c->cons > (uint64_t)c->mask + 1) {
		/* More than fits: those slots cannot all be what prod claims. Skip to
		 * the producer's position; everything in between is lost and counted. */
		c->errors++;
		c->skipped += prod - c->cons;
		c->cons = c->prod_cache = prod;
		return -LULL_EPROTO;
	}
	c->prod_cache = prod;
	return (int64_t)(prod - c->cons);
}

/* Copy up to `max` records of `size` bytes into `out`, validating each one's seq.
 * Returns the number of good records copied (bad ones are skipped and counted), 0 when
 * empty, or -EPROTO when the producer's index was insane (nothing copied; see TRUST). Records are not released to the
 * producer until lull_cons_release(). Work is bounded by `max`. */
static inline int lull_cons_pop(struct lull_cons *c, void *out, uint32_t max, uint32_t size)
{
	uint8_t *dst = (uint8_t *)out;
	uint64_t avail = c->prod_cache - c->cons;
	uint32_t i, n, good = 0, seq;

	if (avail == 0) {
		int64_t a = lull_cons_refresh(c);
		if (a < 0)
			return (int)a;
		avail = (uint64_t)a;
	}
	n = avail < max ? (uint32_t)avail : max;
	for (i = 0; i < n; i++) {
		const uint8_t *slot = c->data + (uint64_t)((c->cons + i) & c->mask) * size;
		/* Copy first, then check the copy: the slot may change while we look. */
		__builtin_memcpy(dst + (uint64_t)good * size, slot, size);
		__builtin_memcpy(&seq, dst + (uint64_t)good * size, sizeof(seq));
		if (seq == (uint32_t)(c->cons + i)) {
			good++;
		} else {
			c->errors++;
			c->skipped++;
		}
	}
	c->cons += n;
	return (int)good;
}

/* Hand consumed slots back to the producer. RELEASE: our copies out of them happen
 * before the producer's ACQUIRE load of cons that lets it overwrite them. */
static inline void lull_cons_release(struct lull_cons *c)
{
	if (c->released != c->cons) {
		LULL_STORE_REL(&c->hdr->cons, c->cons);
		c->released = c->cons;
	}
}

/* The producer's drop count, as it reports it (not trusted for anything but display). */
static inline uint64_t lull_cons_dropped(const struct lull_cons *c)
{
	return LULL_LOAD_RLX(&c->hdr->dropped);
}

/* ------------------------------------------------------------------------------------
 * Record validation, for the reader of each record type.
 * ---------------------------------------------------------------------------------- */

static inline int lull_tel_valid(const struct lull_tel_rec *r, uint32_t n_pcpus)
{
	return r->type >= 1 && r->type <= LULL_TEL_TYPE_MAX && r->pcpu < n_pcpus &&
	       r->pri <= 64 && (r->domid < LULL_DOMID_LIMIT || r->domid == 0x7FFFu /* idle */);
}

static inline int lull_cmd_valid(const struct lull_cmd_rec *r, uint32_t n_leases)
{
	switch (r->type) {
	case LULL_CMD_LEASE_CHANGED:
		return r->slot < n_leases;
	case LULL_CMD_HINT_IDLE:
	case LULL_CMD_HINT_BUSY:
		return r->domid < LULL_DOMID_LIMIT && r->value <= 1000;
	default:
		return 0;
	}
}

static inline int lull_lease_val_valid(const struct lull_lease_val *v)
{
	if (v->state == LULL_LEASE_FREE)
		return 1;
	return v->state == LULL_LEASE_ACTIVE && v->id != 0 &&
	       v->lender < LULL_DOMID_LIMIT && v->borrower < LULL_DOMID_LIMIT &&
	       v->lender != v->borrower && v->credit <= LULL_LEASE_MAX_CREDIT;
}

/* ------------------------------------------------------------------------------------
 * Lease table.
 * ---------------------------------------------------------------------------------- */

/* dom0: write an entry under its sequence lock. */
static inline void lull_lease_write(struct lull_lease *l, const struct lull_lease_val *v)
{
	uint32_t s = LULL_LOAD_RLX(&l->seq);

	/* Odd: readers that see it retry. Each field store is a RELEASE, so the odd seq
	 * is visible before any new field value (no fence: fences are invisible to
	 * ThreadSanitizer, and on x86 these are plain moves anyway). */
	LULL_STORE_RLX(&l->seq, s | 1u);
	LULL_STORE_REL(&l->state, v->state);
	LULL_STORE_REL(&l->id, v->id);
	LULL_STORE_REL(&l->lender, v->lender);
	LULL_STORE_REL(&l->borrower, v->borrower);
	LULL_STORE_REL(&l->credit, v->credit);
	LULL_STORE_REL(&l->expires_ns, v->expires_ns);
	LULL_STORE_REL(&l->granted_ns, v->granted_ns);
	/* Even again, RELEASE: a reader that sees this value sees every field above. */
	LULL_STORE_REL(&l->seq, (s | 1u) + 1u);
}

/* Xen (or any reader): copy an entry out consistently. Bounded: -EBUSY after
 * LULL_LEASE_READ_TRIES torn reads; -EPROTO when the stable copy is invalid. */
static inline int lull_lease_read(const struct lull_lease *l, struct lull_lease_val *v)
{
	uint32_t t, s1, s2;

	for (t = 0; t < LULL_LEASE_READ_TRIES; t++) {
		s1 = LULL_LOAD_ACQ(&l->seq);
		if (s1 & 1u)
			continue;
		/* ACQUIRE loads: the seq reload below cannot move above them, and a
		 * field written after an odd seq brings that seq into view. */
		v->state = LULL_LOAD_ACQ(&l->state);
		v->id = LULL_LOAD_ACQ(&l->id);
		v->lender = LULL_LOAD_ACQ(&l->lender);
		v->borrower = LULL_LOAD_ACQ(&l->borrower);
		v->credit = LULL_LOAD_ACQ(&l->credit);
		v->expires_ns = LULL_LOAD_ACQ(&l->expires_ns);
		v->granted_ns = LULL_LOAD_ACQ(&l->granted_ns);
		v->pad = 0;
		s2 = LULL_LOAD_RLX(&l->seq);
		if (s1 == s2)
			return lull_lease_val_valid(v) ? 0 : -LULL_EPROTO;
	}
	return -EBUSY;
}

/* Xen: mark the lease `id` in this entry revoked at `now`. Only Xen writes these. */
static inline void lull_lease_revoke(struct lull_lease *l, uint64_t id, uint64_t now)
{
	LULL_STORE_RLX(&l->revoked_ns, now);
	/* RELEASE: a reader that sees revoked_id sees revoked_ns. */
	LULL_STORE_REL(&l->revoked_id, id);
}

/* Effective state of a lease value read from `l` at time `now` (see LEASES). */
static inline enum lull_lease_state lull_lease_effective(const struct lull_lease *l,
							  const struct lull_lease_val *v,
							  uint64_t now)
{
	if (v->state != LULL_LEASE_ACTIVE)
		return LULL_LEASE_FREE;
	if (LULL_LOAD_ACQ(&l->revoked_id) == v->id)
		return LULL_LEASE_REVOKED;
	return now < v->expires_ns ? LULL_LEASE_ACTIVE : LULL_LEASE_EXPIRED;
}

#ifdef __cplusplus
}
#endif

#endif /* LULL_SHM_H */

// SPDX-License-Identifier: GPL-2.0-only
/*
 * conf_container: the /dev/vfio/vfio container uAPI, differential.
 *
 * Every expected value is what the stock 6.1 container code (container.c,
 * with vfio_iommu_type1 behind it) returns; the same checks run on our
 * vfio.ko. Covers: the API version; VFIO_CHECK_EXTENSION of every extension
 * constant with no IOMMU backend module, with the type1 module but no
 * group, with a group but no IOMMU set, and with type1 set; VFIO_SET_IOMMU
 * before a group is attached, with bad types, after, a second time; the
 * ioctls passed through to the backend; and closing container, group and
 * device fds in every order (each followed by the group being free again and
 * the type1 module's reference count back where it was).
 * Device: edu (amd64) or the zPCI virtio-rng (s390x), bound to vfio-pci.
 * Guest test: static, TAP on stdout.
 */
#include "tap.h"

/*
 * The plan: how many checks (skips included) this test makes on each
 * architecture. Update with the count the harness reports ("planned N
 * subtests, ran M") when checks are added or removed.
 */
#define CHECKS_AMD64	212
#define CHECKS_S390X	212

#define NEXT	12	/* extension numbers 0..11 */

/* Stock answers of VFIO_CHECK_EXTENSION, one row per state. */
enum { EXT_NOBACKEND, EXT_NOIOMMU, EXT_SET, EXT_ROWS };

static const char *const ext_names[NEXT] = {
	"0", "TYPE1", "SPAPR_TCE", "TYPE1v2", "DMA_CC", "EEH",
	"TYPE1_NESTING", "SPAPR_TCE_v2", "NOIOMMU", "UNMAP_ALL",
	"UPDATE_VADDR", "11",
};

static const int ext_want[EXT_ROWS][NEXT] = {
	/* no IOMMU driver registered at all: every answer is 0 */
	[EXT_NOBACKEND] = { 0 },
	/* type1 asked with no container data (container.c: driver list) */
	[EXT_NOIOMMU] = { 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0 },
	/* type1 set: DMA_CC from the domains, UPDATE_VADDR without mdevs */
	[EXT_SET] = { 0, 1, 0, 1, -1, 0, 1, 0, 0, 1, 1, 0 },
};

static void check_extensions(int c, int row, const char *state, int dma_cc)
{
	for (int i = 0; i < NEXT; i++) {
		int want = ext_want[row][i];

		if (want < 0)
			want = dma_cc;
		expect(ion(c, VFIO_CHECK_EXTENSION, i), want,
		       "%s: CHECK_EXTENSION(%s)", state, ext_names[i]);
	}
	expect(ion(c, VFIO_CHECK_EXTENSION, 12345), 0, "%s: CHECK_EXTENSION(12345)", state);
	expect(ion(c, VFIO_CHECK_EXTENSION, -1UL), 0, "%s: CHECK_EXTENSION(~0UL)", state);
}

static char bdf[64];
static int group;
static long refs0;

/*
 * Sets up container + group (+ device), closes them in the given order
 * (C container, G group, D device) and checks the state after each close.
 */
static void close_order(const char *order)
{
	int fds[3] = { -1, -1, -1 };	/* C, G, D */
	int closed[3] = { 0, 0, 0 };
	const char *names = "CGD";
	int with_dev = strlen(order) == 3;
	int gfd;

	fds[0] = open_container();
	fds[1] = open_group(group);
	if (!ok(fds[0] >= 0 && fds[1] >= 0, "order %s: open container and group", order))
		return;
	if (!expect(io(fds[1], VFIO_GROUP_SET_CONTAINER, &fds[0]), 0, "order %s: SET_CONTAINER", order) ||
	    !expect(ion(fds[0], VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "order %s: SET_IOMMU", order))
		goto out;
	if (with_dev) {
		fds[2] = io(fds[1], VFIO_GROUP_GET_DEVICE_FD, bdf);
		if (!expect(fds[2], EXPECT_FD, "order %s: GET_DEVICE_FD", order))
			goto out;
	}

	for (const char *o = order; *o; o++) {
		int i = strchr(names, *o) - names;
		struct vfio_device_info di = { .argsz = sizeof(di) };
		struct vfio_iommu_type1_info ii = { .argsz = sizeof(ii) };

		close(fds[i]);
		closed[i] = 1;
		if (!o[1])
			break;
		/* What is still open still works as stock lets it. */
		if (!closed[2] && with_dev)
			expect(io(fds[2], VFIO_DEVICE_GET_INFO, &di), 0,
			       "order %s: after closing %c the device answers GET_INFO", order, *o);
		if (!closed[1]) {
			expect(group_flags(fds[1]), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET,
			       "order %s: after closing %c the group still has its container", order, *o);
		} else if (!closed[2] && with_dev) {
			/* The device fd keeps the group file open. */
			gfd = open_group(group);
			expect(rv(gfd), -EBUSY, "order %s: after closing %c the group cannot be reopened", order, *o);
			if (gfd >= 0)
				close(gfd);
		}
		if (!closed[0]) {
			/* Container privileged while the group is attached. */
			long want = closed[1] && (closed[2] || !with_dev) ? -EINVAL : 0;

			expect(io(fds[0], VFIO_IOMMU_GET_INFO, &ii), want,
			       "order %s: after closing %c the container's IOMMU_GET_INFO", order, *o);
		}
	}

	gfd = open_group(group);
	expect(rv(gfd), EXPECT_FD, "order %s: the group reopens after all closed", order);
	if (gfd >= 0) {
		expect(group_flags(gfd), VFIO_GROUP_FLAGS_VIABLE, "order %s: the group is free (viable, no container)", order);
		close(gfd);
	}
	ok(type1_refcnt() == refs0, "order %s: type1 module refcnt back at %ld (is %ld)", order, refs0, type1_refcnt());
	return;
out:
	for (int i = 2; i >= 0; i--)
		if (fds[i] >= 0 && !closed[i])
			close(fds[i]);
}

int main(void)
{
	struct vfio_iommu_type1_info ii = { .argsz = sizeof(ii) };
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	int c, c2, g, ret, dma_cc;
	char buf[16];

	conf_start(CHECKS_AMD64, CHECKS_S390X);

	/* --- no backend module: vfio alone --- */
	if (access("/sys/module/vfio", F_OK)) {
		const char *rm[] = { "rmmod", "vfio_iommu_type1", NULL };

		ok(modprobe("vfio") == 0, "modprobe vfio");
		/* stock vfio.ko has a "post:" softdep on the IOMMU backends */
		ok(!access("/sys/module/vfio_iommu_type1", F_OK),
		   "modprobe vfio loads vfio_iommu_type1 too (softdep)");
		ok(run_cmd(rm) == 0, "rmmod vfio_iommu_type1");
		c = open_container();
		if (!expect(rv(c), EXPECT_FD, "open /dev/vfio/vfio"))
			return tap_done();
		expect(ion(c, VFIO_GET_API_VERSION, 0), VFIO_API_VERSION, "GET_API_VERSION");
		check_extensions(c, EXT_NOBACKEND, "no backend module", 0);
		close(c);
	} else {
		skip("vfio already loaded", "CHECK_EXTENSION with no backend module");
	}

	ok(modprobe("vfio_iommu_type1") == 0, "modprobe vfio_iommu_type1");
	ok(modprobe("vfio_pci") == 0, "modprobe vfio_pci");
	refs0 = type1_refcnt();
	check_flavour();

	/* --- an empty container --- */
	c = open_container();
	if (!expect(rv(c), EXPECT_FD, "open /dev/vfio/vfio"))
		return tap_done();
	expect(ion(c, VFIO_GET_API_VERSION, 0), VFIO_API_VERSION, "GET_API_VERSION");
	check_extensions(c, EXT_NOIOMMU, "empty", 0);
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL, "empty: SET_IOMMU(TYPE1v2) before any group");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), -EINVAL, "empty: SET_IOMMU(TYPE1) before any group");
	expect(ion(c, VFIO_SET_IOMMU, 12345), -EINVAL, "empty: SET_IOMMU(12345) before any group");
	expect(io(c, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "empty: IOMMU_GET_INFO without backend");
	expect(io(c, VFIO_IOMMU_MAP_DMA, &map), -EINVAL, "empty: IOMMU_MAP_DMA without backend");
	expect(ion(c, _IO(VFIO_TYPE, VFIO_BASE + 99), 0), -EINVAL, "empty: unknown vfio ioctl");
	expect(ion(c, _IO('T', 1), 0), -EINVAL, "empty: foreign ioctl");
	expect(rv(read(c, buf, sizeof(buf))), -EINVAL, "empty: read() on the container");
	expect(rv(write(c, buf, sizeof(buf))), -EINVAL, "empty: write() on the container");
	ok(type1_refcnt() == refs0, "empty: type1 refcnt unchanged (%ld)", type1_refcnt());

	/* --- a group attached, no IOMMU set --- */
	ret = conf_pci_device(bdf, sizeof(bdf), &group);
	if (!ok(!ret, "a PCI device for the tests bound to vfio-pci (%s)", errname(ret))) {
		close(c);
		return tap_done();
	}
	diag("device %s, IOMMU group %d", bdf, group);
	g = open_group(group);
	if (!expect(rv(g), EXPECT_FD, "open /dev/vfio/%d", group))
		return tap_done();
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "SET_CONTAINER");
	check_extensions(c, EXT_NOIOMMU, "group, no IOMMU", 0);
	expect(io(c, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "group, no IOMMU: IOMMU_GET_INFO");
	expect(ion(c, VFIO_SET_IOMMU, 12345), -ENODEV, "SET_IOMMU(12345)");
	expect(ion(c, VFIO_SET_IOMMU, 0), -ENODEV, "SET_IOMMU(0)");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), -ENODEV, "SET_IOMMU(SPAPR_TCE)");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), -ENODEV, "SET_IOMMU(NOIOMMU)");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_DMA_CC_IOMMU), -ENODEV, "SET_IOMMU(DMA_CC)");
	/* type1 claims the extension, then its open() refuses the type */
	expect(ion(c, VFIO_SET_IOMMU, VFIO_UNMAP_ALL), -EINVAL, "SET_IOMMU(UNMAP_ALL)");
	ok(type1_refcnt() == refs0, "failed SET_IOMMUs leave the type1 refcnt (%ld)", type1_refcnt());
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU(TYPE1v2) with a group");
	ok(type1_refcnt() == refs0 + 1, "type1 refcnt +1 (%ld)", type1_refcnt());
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL, "second SET_IOMMU(TYPE1v2)");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), -EINVAL, "second SET_IOMMU(TYPE1)");
	expect(ion(c, VFIO_SET_IOMMU, 12345), -EINVAL, "second SET_IOMMU(12345)");
	ok(type1_refcnt() == refs0 + 1, "type1 refcnt still +1 (%ld)", type1_refcnt());
	/* QEMU's intel-iommu has no snoop control; s390's has no enforcement */
	dma_cc = 0;
	check_extensions(c, EXT_SET, "type1 set", dma_cc);
	expect(io(c, VFIO_IOMMU_GET_INFO, &ii), 0, "type1 set: IOMMU_GET_INFO passed through");
	expect(ion(c, _IO(VFIO_TYPE, VFIO_BASE + 99), 0), -ENOTTY, "type1 set: unknown vfio ioctl (type1: ENOTTY)");
	expect(ion(c, _IO('T', 1), 0), -ENOTTY, "type1 set: foreign ioctl (type1: ENOTTY)");
	expect(ion(c, VFIO_GET_API_VERSION, 0), VFIO_API_VERSION, "type1 set: GET_API_VERSION");

	/* a second container cannot set an IOMMU without a group */
	c2 = open_container();
	expect(ion(c2, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL, "second, empty container: SET_IOMMU");
	check_extensions(c2, EXT_NOIOMMU, "second, empty container", 0);
	close(c2);

	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), 0, "UNSET_CONTAINER");
	ok(type1_refcnt() == refs0, "the last group out releases type1 (%ld)", type1_refcnt());
	expect(io(c, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "container deprivileged: IOMMU_GET_INFO");
	check_extensions(c, EXT_NOIOMMU, "deprivileged", 0);
	/* and it can take the group and an IOMMU again */
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "SET_CONTAINER again");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0, "SET_IOMMU(TYPE1, v1) on the reused container");
	expect(io(c, VFIO_IOMMU_GET_INFO, &ii), 0, "v1: IOMMU_GET_INFO");
	close(g);
	ok(type1_refcnt() == refs0, "closing the group releases type1 (%ld)", type1_refcnt());
	expect(io(c, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "container deprivileged by the group's close");
	close(c);

	/* --- closing in every order --- */
	close_order("CG");
	close_order("GC");
	close_order("CGD");
	close_order("CDG");
	close_order("GCD");
	close_order("GDC");
	close_order("DCG");
	close_order("DGC");

	return tap_done();
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * conf_group: the /dev/vfio/N group uAPI and group viability, differential.
 *
 * Expected values are what the stock 6.1 group code (vfio_main.c) and
 * vfio-pci's match op return. Covers: a second open (EBUSY); GET_STATUS
 * (argsz, VIABLE, CONTAINER_SET); SET_CONTAINER with bad, foreign and
 * second containers (a group in two containers); UNSET_CONTAINER with and
 * without users; GET_DEVICE_FD with right, wrong, decorated and over-long
 * (> PAGE_SIZE) names; two containers and two groups at once; a group whose
 * device leaves vfio-pci while the group fd is open; a device bound to its
 * host driver (no vfio group); and the removal of a device whose fd is
 * open (the remove blocks until the fd is closed, vfio-pci signals the
 * request eventfd meanwhile), done from a child process with timeouts.
 * Devices: edu and e1000e (amd64), the zPCI virtio-rng (s390x; the cases
 * that need a second device are skipped there).
 * Guest test: static, TAP on stdout.
 */
#include "tap.h"
#include <sys/eventfd.h>

/*
 * The plan: how many checks (skips included) this test makes on each
 * architecture. Update with the count the harness reports ("planned N
 * subtests, ran M") when checks are added or removed.
 */
#define CHECKS_AMD64	112
#define CHECKS_S390X	63

static char bdf[64];
static int group;

static void get_device_names(int g)
{
	static char page[8192];
	char name[256];
	long fd, fd2;
	size_t len = strlen(bdf);

	fd = io(g, VFIO_GROUP_GET_DEVICE_FD, bdf);
	expect(fd, EXPECT_FD, "GET_DEVICE_FD(\"%s\")", bdf);
	fd2 = io(g, VFIO_GROUP_GET_DEVICE_FD, bdf);
	expect(fd2, EXPECT_FD, "a second GET_DEVICE_FD of the same device");
	if (fd2 >= 0)
		close(fd2);

	snprintf(name, sizeof(name), "%s ", bdf);
	fd2 = io(g, VFIO_GROUP_GET_DEVICE_FD, name);
	expect(fd2, EXPECT_FD, "GET_DEVICE_FD(\"%s \"): trailing blanks match", bdf);
	if (fd2 >= 0)
		close(fd2);
	snprintf(name, sizeof(name), "%sx", bdf);
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, name), -ENODEV, "GET_DEVICE_FD(\"%s\")", name);
	snprintf(name, sizeof(name), "%.*s", (int)len - 1, bdf);
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, name), -ENODEV, "GET_DEVICE_FD(\"%s\"): a prefix", name);
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, "0000:7f:1f.7"), -ENODEV, "GET_DEVICE_FD(\"0000:7f:1f.7\")");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, ""), -ENODEV, "GET_DEVICE_FD(\"\")");
	snprintf(name, sizeof(name), "%s bogus", bdf);
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, name), -EINVAL, "GET_DEVICE_FD(\"%s\"): unknown option", name);
	snprintf(name, sizeof(name), "%s vf_token=1234", bdf);
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, name), -EINVAL, "GET_DEVICE_FD: short vf_token");
	snprintf(name, sizeof(name), "%s vf_token=zzzzzzzz-0000-4000-8000-000000000000", bdf);
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, name), -EINVAL, "GET_DEVICE_FD: malformed vf_token");
	snprintf(name, sizeof(name), "%s vf_token=5a1d0ec7-0000-4000-8000-000000000001", bdf);
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, name), -EINVAL, "GET_DEVICE_FD: vf_token on a device that is no PF/VF");

	/* strndup_user(PAGE_SIZE): a name filling the page fits, one more does not */
	memset(page, 'a', sizeof(page));
	page[getpagesize() - 1] = '\0';
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, page), -ENODEV, "GET_DEVICE_FD(name of PAGE_SIZE-1 chars)");
	page[getpagesize() - 1] = 'a';
	page[getpagesize()] = '\0';
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, page), -EINVAL, "GET_DEVICE_FD(name of PAGE_SIZE chars)");
	page[getpagesize()] = 'a';
	page[sizeof(page) - 1] = '\0';
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, page), -EINVAL, "GET_DEVICE_FD(name of 8191 chars)");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, NULL), -EFAULT, "GET_DEVICE_FD(NULL)");

	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EBUSY, "UNSET_CONTAINER with a device open");
	if (fd >= 0)
		close(fd);
}

static void basic(void)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int g, g2, c, c2, devnull;
	char buf[8];

	g = open_group(group);
	if (!expect(rv(g), EXPECT_FD, "open /dev/vfio/%d", group))
		return;
	g2 = open_group(group);
	expect(rv(g2), -EBUSY, "a second open of the group");
	if (g2 >= 0)
		close(g2);

	st.argsz = 7;
	expect(io(g, VFIO_GROUP_GET_STATUS, &st), -EINVAL, "GET_STATUS with argsz 7");
	st.argsz = 8;
	st.flags = 0xff;
	expect(io(g, VFIO_GROUP_GET_STATUS, &st), 0, "GET_STATUS with argsz 8");
	expect(st.flags, VFIO_GROUP_FLAGS_VIABLE, "GET_STATUS flags: viable, no container");
	expect(io(g, VFIO_GROUP_GET_STATUS, NULL), -EFAULT, "GET_STATUS(NULL)");
	expect(ion(g, VFIO_GET_API_VERSION, 0), -ENOTTY, "a container ioctl on the group");
	expect(ion(g, _IO(VFIO_TYPE, VFIO_BASE + 99), 0), -ENOTTY, "an unknown ioctl on the group");
	expect(rv(read(g, buf, sizeof(buf))), -EINVAL, "read() on the group");

	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, bdf), -EINVAL, "GET_DEVICE_FD without a container");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, "0000:7f:1f.7"), -ENODEV,
	       "GET_DEVICE_FD of a wrong name without a container");
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EINVAL, "UNSET_CONTAINER without a container");

	c = -1;
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), -EBADF, "SET_CONTAINER(-1)");
	devnull = open("/dev/null", O_RDWR);
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &devnull), -EINVAL, "SET_CONTAINER(/dev/null)");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &g), -EINVAL, "SET_CONTAINER(the group's own fd)");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, NULL), -EFAULT, "SET_CONTAINER(NULL)");
	close(devnull);
	expect(group_flags(g), VFIO_GROUP_FLAGS_VIABLE, "the failed SET_CONTAINERs left no container");

	c = open_container();
	c2 = open_container();
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "SET_CONTAINER");
	expect(group_flags(g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET,
	       "GET_STATUS flags: viable, container set");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), -EINVAL, "SET_CONTAINER to the same container again");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c2), -EINVAL, "SET_CONTAINER to a second container (shared group)");
	expect(ion(c2, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL, "the second container got no group");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, bdf), -EINVAL, "GET_DEVICE_FD before SET_IOMMU");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU(TYPE1v2)");

	get_device_names(g);

	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), 0, "UNSET_CONTAINER after the device is closed");
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EINVAL, "a second UNSET_CONTAINER");
	expect(group_flags(g), VFIO_GROUP_FLAGS_VIABLE, "GET_STATUS flags: viable, no container");
	/* now the second container can have it */
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c2), 0, "SET_CONTAINER to the second container");
	expect(ion(c2, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0, "SET_IOMMU(TYPE1) on the second container");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), -EINVAL, "SET_CONTAINER back to the first one");
	close(g);
	close(c2);
	close(c);
	g = open_group(group);
	expect(rv(g), EXPECT_FD, "the group reopens after its close");
	if (g >= 0)
		close(g);
}

/* Two groups (edu, e1000e) in two containers, then in one. */
static void two_groups(const char *nic)
{
	struct vfio_iommu_type1_info ii = { .argsz = sizeof(ii) };
	int ga, gb, ca, cb, ngroup = pci_group(nic);
	long da, db;

	diag("second device %s, IOMMU group %d", nic, ngroup);
	ga = open_group(group);
	gb = open_group(ngroup);
	ca = open_container();
	cb = open_container();
	if (!ok(ga >= 0 && gb >= 0 && ca >= 0 && cb >= 0, "open two groups and two containers"))
		return;
	expect(io(ga, VFIO_GROUP_SET_CONTAINER, &ca), 0, "group A into container A");
	expect(io(gb, VFIO_GROUP_SET_CONTAINER, &cb), 0, "group B into container B");
	expect(ion(ca, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU on container A");
	expect(ion(cb, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "SET_IOMMU on container B");
	da = io(ga, VFIO_GROUP_GET_DEVICE_FD, bdf);
	db = io(gb, VFIO_GROUP_GET_DEVICE_FD, nic);
	expect(da, EXPECT_FD, "device A open");
	expect(db, EXPECT_FD, "device B open at the same time");
	expect(io(ga, VFIO_GROUP_GET_DEVICE_FD, nic), -ENODEV, "group A does not hand out group B's device");
	expect(io(gb, VFIO_GROUP_SET_CONTAINER, &ca), -EINVAL, "group B into container A while in B");
	if (db >= 0)
		close(db);
	expect(io(gb, VFIO_GROUP_UNSET_CONTAINER, NULL), 0, "group B leaves container B");
	expect(io(cb, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "container B deprivileged");
	expect(io(gb, VFIO_GROUP_SET_CONTAINER, &ca), 0, "group B joins container A (IOMMU already set)");
	expect(group_flags(gb), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET, "group B: container set");
	db = io(gb, VFIO_GROUP_GET_DEVICE_FD, nic);
	expect(db, EXPECT_FD, "device B opens through container A");
	expect(ion(cb, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL, "container B has no group for SET_IOMMU");
	if (da >= 0)
		close(da);
	expect(io(ga, VFIO_GROUP_UNSET_CONTAINER, NULL), 0, "group A leaves container A");
	expect(io(ca, VFIO_IOMMU_GET_INFO, &ii), 0, "container A keeps its IOMMU for group B");
	if (db >= 0)
		close(db);
	close(ga);
	close(gb);
	expect(io(ca, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "container A deprivileged after both groups closed");
	close(ca);
	close(cb);
}

/*
 * The NIC leaves vfio-pci while its group fd is open, then goes to its host
 * driver: the group fd is dead, no vfio group exists for a device bound to
 * a host driver, and a new vfio group appears when it comes back.
 */
static void viability(const char *nic)
{
	struct vfio_iommu_type1_info ii = { .argsz = sizeof(ii) };
	int ngroup = pci_group(nic);
	char path[PATH_MAX], drv[64];
	int g, c, g2;
	long r;

	g = open_group(ngroup);
	c = open_container();
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "NIC group: SET_CONTAINER");
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "NIC group: SET_IOMMU");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", nic);
	ok(write_file(path, nic) == 0, "unbind %s from vfio-pci with its group in use (no device fd)", nic);
	expect(group_flags(g), -ENODEV, "the stale group fd: GET_STATUS");
	expect(io(g, VFIO_GROUP_GET_DEVICE_FD, nic), -ENODEV, "the stale group fd: GET_DEVICE_FD");
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EINVAL, "the stale group fd: UNSET_CONTAINER (detached)");
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), -ENODEV, "the stale group fd: SET_CONTAINER");
	expect(io(c, VFIO_IOMMU_GET_INFO, &ii), -EINVAL, "its container lost the group");
	snprintf(path, sizeof(path), "/dev/vfio/%d", ngroup);
	ok(access(path, F_OK) && errno == ENOENT, "%s is gone", path);

	r = pci_bind(nic, "e1000e");
	pci_driver(nic, drv, sizeof(drv));
	ok(!r, "bind %s to its host driver e1000e (%s, driver \"%s\")", nic, errname(r), drv);
	g2 = open_group(ngroup);
	expect(rv(g2), -ENOENT, "no vfio group for a group whose device has a host driver");
	if (g2 >= 0)
		close(g2);
	r = pci_bind(nic, "vfio-pci");
	ok(!r, "back to vfio-pci (%s)", errname(r));
	g2 = open_group(ngroup);
	expect(rv(g2), EXPECT_FD, "a new vfio group while the stale fd is still open");
	if (g2 >= 0) {
		expect(group_flags(g2), VFIO_GROUP_FLAGS_VIABLE, "the new group is viable");
		close(g2);
	}
	expect(group_flags(g), -ENODEV, "the stale fd stays dead");
	close(g);
	close(c);
	skip("single-device IOMMU groups in this guest",
	     "host driver bound to another member of a group in use");
}

/*
 * Removes the PCI device while a device fd is open, from a child: the
 * remove must wait for the close; with a request eventfd set vfio-pci
 * signals it. The fd is closed in any case, so the child cannot hang.
 */
static void removal(const char *dev, int use_req)
{
	char path[PATH_MAX];
	int g, c, efd = -1, st = 0, done;
	long d;
	pid_t pid;
	uint64_t cnt = 0;
	const char *how = use_req ? "with a request eventfd" : "without a request eventfd";

	g = open_group(pci_group(dev));
	c = open_container();
	expect(io(g, VFIO_GROUP_SET_CONTAINER, &c), 0, "remove %s: SET_CONTAINER", how);
	expect(ion(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, "remove %s: SET_IOMMU", how);
	d = io(g, VFIO_GROUP_GET_DEVICE_FD, dev);
	if (!expect(d, EXPECT_FD, "remove %s: GET_DEVICE_FD", how)) {
		close(g);
		close(c);
		return;
	}
	if (use_req) {
		efd = eventfd(0, EFD_NONBLOCK);
		expect(set_irq_eventfds(d, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, &efd), 0,
		       "remove %s: SET_IRQS(REQ, eventfd)", how);
	}

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/remove", dev);
	pid = write_file_child(path, "1");
	if (use_req) {
		ssize_t n;

		ok(wait_readable(efd, 15000), "remove %s: the request eventfd fires", how);
		n = read(efd, &cnt, sizeof(cnt));
		ok(n == sizeof(cnt) && cnt >= 1, "remove %s: request count %llu", how, (unsigned long long)cnt);
	}
	done = wait_child(pid, &st, 1500);
	ok(done == 0, "remove %s: blocks while the device fd is open", how);
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EBUSY, "remove %s: group still busy", how);
	close(d);
	if (!done)
		done = wait_child(pid, &st, 30000);
	ok(done == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "remove %s: completes once the fd is closed (status %#x)", how, st);
	if (done != 1)
		kill_child(pid, &st);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", dev);
	ok(access(path, F_OK) && errno == ENOENT, "remove %s: %s is gone", how, dev);
	expect(group_flags(g), -ENODEV, "remove %s: the group fd is dead", how);
	expect(io(g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EINVAL, "remove %s: the group was detached", how);
	close(g);
	close(c);
	if (efd >= 0)
		close(efd);
	ok(write_file("/sys/bus/pci/rescan", "1") == 0, "rescan the PCI bus");
	ok(!access(path, F_OK), "remove %s: %s is back after the rescan", how, dev);
}

int main(void)
{
	char nic[64];
	int have_nic, ret;

	conf_start(CHECKS_AMD64, CHECKS_S390X);
	if (conf_pci_setup(bdf, sizeof(bdf), &group))
		return tap_done();

	basic();

	have_nic = !is_s390x() && pci_find(E1000E_VENDOR, E1000E_DEVICE, nic, sizeof(nic));
	if (have_nic) {
		ok(modprobe("e1000e") == 0, "modprobe e1000e");
		ret = pci_bind(nic, "vfio-pci");
		have_nic = ok(!ret, "%s bound to vfio-pci (%s)", nic, errname(ret));
	}
	if (have_nic) {
		two_groups(nic);
		viability(nic);
		removal(nic, 1);
		ret = pci_bind(nic, "vfio-pci");
		ok(!ret, "%s back on vfio-pci after the rescan (%s)", nic, errname(ret));
	} else {
		skip("no second PCI device", "two groups in two containers");
		skip("no second PCI device", "viability with a host driver");
	}
	/* the test device last: removing a zPCI function may not come back */
	removal(bdf, 0);
	return tap_done();
}

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { MemoryStorage } from "./memory-storage.js";
import { LOCK_FILE, NodeStorage } from "./node-storage.js";
import type { DeviceStorage } from "./storage.js";

const folders: string[] = [];
after(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "testigo-storage-"));
  folders.push(dir);
  return dir;
}

function behavesLikeStorage(name: string, make: () => Promise<DeviceStorage>): void {
  describe(`${name} (DeviceStorage contract)`, () => {
    it("writes, reads, replaces, lists and deletes", async () => {
      const storage = await make();
      assert.equal(await storage.read("a"), undefined);
      await storage.write("a", new Uint8Array([1, 2, 3]));
      await storage.write("b.1", new Uint8Array([4]));
      await storage.write("b.2", new Uint8Array([]));
      assert.deepEqual(await storage.read("a"), new Uint8Array([1, 2, 3]));
      await storage.write("a", new Uint8Array([9]));
      assert.deepEqual(await storage.read("a"), new Uint8Array([9]));
      assert.deepEqual(await storage.list("b."), ["b.1", "b.2"]);
      assert.deepEqual(await storage.read("b.2"), new Uint8Array([]));
      await storage.delete("b.1");
      await storage.delete("missing");
      assert.deepEqual(await storage.list(""), ["a", "b.2"]);
    });

    it("refuses names that could escape the folder", async () => {
      const storage = await make();
      for (const bad of ["../x", "a/b", "", ".", "..", "a\u0000b", "x".repeat(129)]) {
        await assert.rejects(storage.write(bad, new Uint8Array([1])), RangeError, JSON.stringify(bad));
      }
    });

    it("batch: writes and deletes many names at once", async () => {
      const storage = await make();
      await storage.write("gone", new Uint8Array([1]));
      await storage.write("kept", new Uint8Array([2]));
      await storage.batch(
        [
          { name: "kept", data: new Uint8Array([3]) },
          { name: "new", data: new Uint8Array([4]) },
        ],
        ["gone", "missing"],
      );
      assert.deepEqual(await storage.list(""), ["kept", "new"]);
      assert.deepEqual(await storage.read("kept"), new Uint8Array([3]));
    });

    it("exclusive: sections never overlap, a failing section releases the lock", async () => {
      const storage = await make();
      let inside = 0;
      let overlapped = false;
      const section = (fail: boolean) =>
        storage.exclusive(async () => {
          inside++;
          if (inside > 1) overlapped = true;
          await new Promise((resolve) => setTimeout(resolve, 5));
          inside--;
          if (fail) throw new Error("inside");
          return 1;
        });
      const results = await Promise.allSettled([section(false), section(true), section(false), section(false)]);
      assert.equal(overlapped, false);
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "rejected", "fulfilled", "fulfilled"],
      );
      assert.equal(await storage.exclusive(async () => 2), 2);
    });

    it("returns copies, not views of its own bytes", async () => {
      const storage = await make();
      const data = new Uint8Array([1, 2]);
      await storage.write("c", data);
      data[0] = 7;
      const read = await storage.read("c");
      assert.deepEqual(read, new Uint8Array([1, 2]));
    });
  });
}

behavesLikeStorage("MemoryStorage", async () => new MemoryStorage());
behavesLikeStorage("NodeStorage", async () => NodeStorage.open(await tempDir()));

describe("NodeStorage on disk", () => {
  it("creates its folder and files owner-only", async () => {
    const dir = join(await tempDir(), "device");
    const storage = await NodeStorage.open(dir);
    await storage.write("secret", new Uint8Array([1]));
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, "secret"))).mode & 0o777, 0o600);
  });

  it("removes temporaries left by a crash and never lists them; a fresh one (another process's write in flight) stays", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "x.abcdef.tmp"), "partial");
    const old = new Date(Date.now() - 60_000);
    await utimes(join(dir, "x.abcdef.tmp"), old, old);
    await writeFile(join(dir, "y.abcdef.tmp"), "in flight");
    const storage = await NodeStorage.open(dir);
    assert.deepEqual(await readdir(dir), ["y.abcdef.tmp"]);
    assert.deepEqual(await storage.list(""), []);
  });

  it("exclusive: two instances on one folder exclude each other; the lock file goes when released", async () => {
    const dir = await tempDir();
    const [a, b] = [await NodeStorage.open(dir), await NodeStorage.open(dir)];
    const order: string[] = [];
    const section = (storage: NodeStorage, name: string) =>
      storage.exclusive(async () => {
        order.push(`${name}+`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        order.push(`${name}-`);
      });
    await Promise.all([section(a, "a"), section(b, "b")]);
    assert.ok(order.join() === "a+,a-,b+,b-" || order.join() === "b+,b-,a+,a-", order.join());
    assert.deepEqual(await readdir(dir), []);
  });

  it("exclusive: a lock left by a dead process, or by an earlier process with this pid, is taken over", async () => {
    const dir = await tempDir();
    const storage = await NodeStorage.open(dir);
    const child = spawn(process.execPath, ["-e", ""]);
    const deadPid = await new Promise<number>((resolve) => child.once("exit", () => resolve(child.pid ?? 0)));
    await writeFile(join(dir, LOCK_FILE), `${deadPid} 0123456789abcdef01234567\n`);
    assert.equal(await storage.exclusive(async () => "taken over"), "taken over");
    await writeFile(join(dir, LOCK_FILE), `${process.pid} 0123456789abcdef01234567\n`);
    assert.equal(await storage.exclusive(async () => "taken over"), "taken over");
    // A lock untouched for longer than any holder leaves it (its pid may have been reused).
    await writeFile(join(dir, LOCK_FILE), `${process.ppid} 0123456789abcdef01234567\n`);
    const old = new Date(Date.now() - 60_000);
    await utimes(join(dir, LOCK_FILE), old, old);
    assert.equal(await storage.exclusive(async () => "taken over"), "taken over");
    assert.deepEqual(await readdir(dir), []);
  });

  it("exclusive: a live holder's fresh lock is waited for", async () => {
    const dir = await tempDir();
    const storage = await NodeStorage.open(dir);
    await writeFile(join(dir, LOCK_FILE), `${process.ppid} 0123456789abcdef01234567\n`);
    let entered = false;
    const waiting = storage.exclusive(async () => {
      entered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(entered, false);
    await rm(join(dir, LOCK_FILE));
    await waiting;
    assert.equal(entered, true);
  });

  it("keeps the old or the new content when the writer is killed with SIGKILL mid-way", async () => {
    const dir = await tempDir();
    const storage = await NodeStorage.open(dir);
    const old = new Uint8Array(256 * 1024).fill(1);
    await storage.write("big", old);
    // A child process rewrites the file in a loop; we kill it at an arbitrary moment.
    const moduleUrl = new URL("./node-storage.js", import.meta.url).href;
    const script = `
      const { NodeStorage } = await import(${JSON.stringify(moduleUrl)});
      const s = await NodeStorage.open(${JSON.stringify(dir)});
      let i = 2;
      process.stdout.write("ready\\n");
      for (;;) { await s.write("big", new Uint8Array(256 * 1024).fill(i)); i = i === 200 ? 2 : i + 1; }
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 150));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    const reopened = await NodeStorage.open(dir);
    const data = await reopened.read("big");
    assert.equal(data?.length, old.length);
    const first = data?.[0];
    assert.ok(
      data?.every((byte) => byte === first),
      "the file mixes two writes",
    );
  });
});

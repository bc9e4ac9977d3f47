/**
 * In the container the seat server starts as root and keeps root as its real and saved user id,
 * but works with the learner's ids as the effective ones: files it writes are the learner's, and
 * the kernel's permission checks on the learner's home apply to it as to the learner. The
 * learner's processes cannot signal, trace or read it: those checks compare against the target's
 * real and saved ids (root), and a process whose effective id changed is not dumpable. Only a
 * child's spawn takes root back for a moment, so the child can switch every id to the learner's
 * (the container keeps the capabilities SETUID and SETGID, nothing else).
 */
export interface SeatUser {
  uid: number;
  gid: number;
}

let learner: SeatUser | undefined;

/** Becomes the learner for everything but the real and saved ids (root must call it, once). */
export function actAsLearner(user: SeatUser): void {
  // Children inherit the supplementary groups: none of root's.
  process.setgroups!([user.gid]);
  process.setegid!(user.gid);
  process.seteuid!(user.uid);
  learner = user;
}

/**
 * Spawns a child that is the learner in every id: `spawn` gets the ids to pass to the spawn call
 * (none when the server is not acting for a learner, as in tests on the host).
 */
export function spawnAsLearner<T>(spawn: (ids: Partial<SeatUser>) => T): T {
  const user = learner;
  if (!user) return spawn({});
  process.seteuid!(0);
  try {
    return spawn(user);
  } finally {
    process.seteuid!(user.uid);
  }
}

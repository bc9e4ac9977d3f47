import {
  FieldValue,
  Firestore,
  type DocumentReference,
  type CollectionReference,
  type Transaction,
} from '@google-cloud/firestore';
import type {
  JoinCodeRecord,
  SeatRecord,
  SeatTokenRecord,
  VmRecord,
  WorkshopRecord,
  WorkshopSecrets,
} from './core/workshop.ts';
import type { BootSample } from './core/schedule.ts';

/** Firestore's gRPC code for a create() on a document that exists. */
const ALREADY_EXISTS = 6;

export function isAlreadyExists(error: unknown): boolean {
  return (error as { code?: unknown })?.code === ALREADY_EXISTS;
}

/** Typed access to the collections of DESIGN.md §3. Firestore is the only store. */
export class Store {
  constructor(readonly db: Firestore) {}

  workshops(): CollectionReference<WorkshopRecord> {
    return this.db.collection('workshops') as CollectionReference<WorkshopRecord>;
  }
  workshop(id: string): DocumentReference<WorkshopRecord> {
    return this.workshops().doc(id);
  }
  vms(id: string): CollectionReference<VmRecord> {
    return this.workshop(id).collection('vms') as CollectionReference<VmRecord>;
  }
  seats(id: string): CollectionReference<SeatRecord> {
    return this.workshop(id).collection('seats') as CollectionReference<SeatRecord>;
  }
  secrets(id: string): DocumentReference<WorkshopSecrets> {
    return this.workshop(id)
      .collection('private')
      .doc('secrets') as DocumentReference<WorkshopSecrets>;
  }
  /** One per seat a client address holds: at most SEATS_PER_ADDRESS can be created. */
  addressSlots(id: string): CollectionReference {
    return this.workshop(id).collection('addressSlots');
  }
  /** `seatTokens/{hash}`: finds a returning learner's seat without the code being looked up. */
  seatToken(tokenHash: string): DocumentReference<SeatTokenRecord> {
    return this.db.collection('seatTokens').doc(tokenHash) as DocumentReference<SeatTokenRecord>;
  }
  /** `vmBoots/{vmName}-{generation}`: one per VM that got ready; deleted by TTL (`expiresAt`). */
  bootSamples(): CollectionReference<BootSample> {
    return this.db.collection('vmBoots') as CollectionReference<BootSample>;
  }
  joinCode(code: string): DocumentReference<JoinCodeRecord> {
    return this.db.collection('joinCodes').doc(code) as DocumentReference<JoinCodeRecord>;
  }

  async getWorkshop(id: string): Promise<WorkshopRecord | null> {
    const snap = await this.workshop(id).get();
    return snap.exists ? (snap.data() ?? null) : null;
  }

  async getVms(id: string): Promise<VmRecord[]> {
    const snap = await this.vms(id).get();
    return snap.docs.map((d) => d.data());
  }

  async getSecrets(id: string): Promise<WorkshopSecrets | null> {
    const snap = await this.secrets(id).get();
    return snap.exists ? (snap.data() ?? null) : null;
  }

  /**
   * Creates the workshop and claims its join code in one batch, so there is never a workshop
   * without its code or a code without its workshop. Returns false when the code is taken.
   */
  async createWorkshop(workshop: WorkshopRecord): Promise<boolean> {
    const batch = this.db.batch();
    batch.create(this.joinCode(workshop.joinCode), {
      workshopId: workshop.id,
      createdAt: workshop.createdAt,
    });
    batch.create(this.workshop(workshop.id), workshop);
    try {
      await batch.commit();
      return true;
    } catch (error) {
      if (isAlreadyExists(error)) return false;
      throw error;
    }
  }

  async listWorkshops(ownerId: string, limit: number): Promise<WorkshopRecord[]> {
    const snap = await this.workshops()
      .where('ownerId', '==', ownerId)
      .orderBy('createdAt', 'desc')
      .limit(limit)
      .get();
    return snap.docs.map((d) => d.data());
  }

  /** How many seats learners hold (an aggregation: one read per thousand seats). */
  async countSeats(id: string): Promise<number> {
    return (await this.seats(id).count().get()).data().count;
  }

  /** Reads a workshop inside a transaction, then lets `body` decide and write. */
  async inTransaction<T>(
    id: string,
    body: (tx: Transaction, workshop: WorkshopRecord | null) => Promise<T> | T,
  ): Promise<T> {
    return this.db.runTransaction(async (tx) => {
      const snap = await tx.get(this.workshop(id));
      return body(tx, snap.exists ? (snap.data() ?? null) : null);
    });
  }

  /**
   * Drops what only a live workshop needs: its join code, learners' seats (with their address
   * slots, token records and raised hands) and its secrets.
   */
  async dropLiveData(workshop: WorkshopRecord): Promise<void> {
    await this.db.recursiveDelete(this.seats(workshop.id));
    await this.db.recursiveDelete(this.addressSlots(workshop.id));
    await this.db.recursiveDelete(this.workshop(workshop.id).collection('hands'));
    const tokens = await this.db
      .collection('seatTokens')
      .where('workshopId', '==', workshop.id)
      .select()
      .get();
    const batch = this.db.batch();
    for (const doc of tokens.docs) batch.delete(doc.ref);
    batch.delete(this.secrets(workshop.id));
    batch.delete(this.joinCode(workshop.joinCode));
    await batch.commit();
  }

  increment(n: number) {
    return FieldValue.increment(n);
  }
}

/**
 * Which errors the REST API and the data exchange answer with 503 (the database cannot be reached
 * just now: retry) rather than 500 (src/store/unavailable.ts).
 */
import { MongoBulkWriteError, MongoNetworkError, MongoNotConnectedError, MongoServerError, MongoServerSelectionError, MongoTopologyClosedError, type BulkWriteResult } from 'mongodb';
import { isStoreUnavailable, StoreUnavailableError } from '../src/store/unavailable';

test('a dropped connection, no server, a client being reconnected or a command given up are "unavailable"; refusals and faults are not', () => {
  const dropped = new MongoNetworkError('read ECONNRESET');
  const unavailable = [
    dropped,
    new MongoServerSelectionError('connection refused', { type: 'Unknown', servers: new Map(), stale: false, compatible: true, heartbeatFrequencyMS: 10_000, localThresholdMS: 15, setName: null, maxElectionId: null, maxSetVersion: null, commonWireVersion: 0, logicalSessionTimeoutMinutes: null } as never),
    new MongoNotConnectedError('Client must be connected before running operations'),
    new MongoTopologyClosedError(),
    new StoreUnavailableError('abandoned after 30 s'),
    // insertMany's error around a dropped connection (the seeded soak run met it while an invitation was stored).
    new MongoBulkWriteError(dropped, {} as BulkWriteResult),
  ];
  for (const error of unavailable) expect([error.name, isStoreUnavailable(error)]).toEqual([error.name, true]);

  const refusals = [
    new MongoServerError({ message: 'E11000 duplicate key error', code: 11000 }),
    new MongoBulkWriteError({ message: 'E11000 duplicate key error', code: 11000, writeErrors: [] }, {} as BulkWriteResult),
    new Error('a fault in the node'),
    'not even an error',
  ];
  for (const error of refusals) expect([String(error), isStoreUnavailable(error)]).toEqual([String(error), false]);
});

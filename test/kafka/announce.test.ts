/**
 * The worker's events (Announcer): listeners kept as a set, called in order, a broken one ignored.
 * emit runs once per email, over an array copied on (un)subscribe; these pin what that must keep.
 */
import { describe, expect, it } from 'vitest';
import { Announcer } from '../../src/kafka/announce.js';

const resumed = {} as Record<string, never>;

describe('worker events', () => {
  it('calls each listener once per event, in the order subscribed; a function subscribed twice once', () => {
    const say = new Announcer(undefined, 'group');
    const calls: string[] = [];
    const first = () => calls.push('first');
    say.on('resumed', first);
    say.on('resumed', () => calls.push('second'));
    say.on('resumed', first);
    say.emit('resumed', resumed);
    expect(calls).toEqual(['first', 'second']);
  });

  it('stops calling a listener once unsubscribed, and leaves the others', () => {
    const say = new Announcer(undefined, 'group');
    const calls: string[] = [];
    const off = say.on('resumed', () => calls.push('a'));
    const offB = say.on('resumed', () => calls.push('b'));
    off();
    off(); // twice is harmless
    say.emit('resumed', resumed);
    offB();
    say.emit('resumed', resumed);
    expect(calls).toEqual(['b']);
  });

  it('a listener that throws does not keep the next from hearing it', () => {
    const say = new Announcer(undefined, 'group');
    const heard: unknown[] = [];
    say.on('error', () => {
      throw new Error('broken listener');
    });
    say.on('error', ({ error }) => heard.push(error));
    say.emit('error', { error: 'boom' });
    expect(heard).toEqual(['boom']);
  });

  it('builds a sent event only when someone listens, and counts every send', () => {
    const say = new Announcer(undefined, 'group');
    const reports = say.recordReports(() => {});
    const envelope = { createdAt: new Date(Date.now() - 1000).toISOString(), id: 'e-1' } as never;
    const result = { messageId: '<m@x>', accepted: ['a@b.example'], rejected: [], transport: 't' };
    reports.sent({ topic: 't', partition: 0, offset: '1' }, envelope, result, 1);
    const events: Array<{ latencyMs: number; offset: string }> = [];
    say.on('sent', (event) => events.push(event));
    reports.sent({ topic: 't', partition: 0, offset: '2' }, envelope, result, 1);
    expect(say.stats.sent).toBe(2);
    expect(events.map((e) => e.offset)).toEqual(['2']);
    expect(events[0]!.latencyMs).toBeGreaterThanOrEqual(1000);
  });
});

describe('worker log lines per email', () => {
  const envelope = { createdAt: new Date(Date.now() - 1000).toISOString(), id: 'e-1' } as never;
  const result = { messageId: '<m@x>', accepted: ['a@b.example'], rejected: [], transport: 't' };
  const at = { topic: 't', partition: 0, offset: '1' };
  /** A pino-shaped logger that keeps lines of the levels it enables; `asked` counts isLevelEnabled calls. */
  const logger = (enabled: string[] | undefined) => {
    const lines: Array<{ level: string; fields: Record<string, unknown> }> = [];
    let asked = 0;
    const write = (level: string) => (fields: object) =>
      lines.push({ level, fields: fields as Record<string, unknown> });
    return {
      lines,
      asked: () => asked,
      logger: {
        info: write('info'),
        warn: write('warn'),
        error: write('error'),
        ...(enabled && {
          isLevelEnabled: (level: string) => {
            asked++;
            return enabled.includes(level);
          },
        }),
      },
    };
  };

  it('writes worker.sent and worker.duplicate with the latency when the logger keeps info lines', () => {
    for (const enabled of [undefined, ['info', 'warn', 'error']]) {
      const log = logger(enabled);
      const reports = new Announcer(log.logger, 'group').recordReports(() => {});
      reports.sent(at, envelope, result, 1);
      reports.duplicate({ ...at, envelope });
      expect(log.lines.map((l) => l.fields.event)).toEqual(['worker.sent', 'worker.duplicate']);
      expect(log.lines[0]!.fields.latencyMs).toBeGreaterThanOrEqual(1000);
    }
  });

  it('writes worker.commit_failed at error level with the offsets, and says whether it is tried again', () => {
    const log = logger(undefined);
    const say = new Announcer(log.logger, 'group');
    const offsets = [{ topic: 'mail', partition: 2, offset: '41' }];
    say.commitFailed(new Error('coordinator unreachable'), offsets, true);
    say.commitFailed(new Error('coordinator unreachable'), offsets, false);
    expect(log.lines.map((l) => l.level)).toEqual(['error', 'error']);
    expect(log.lines.map((l) => l.fields)).toEqual([
      expect.objectContaining({ event: 'worker.commit_failed', offsets: ['mail[2]@41'], retrying: true }),
      expect.objectContaining({ event: 'worker.commit_failed', offsets: ['mail[2]@41'], retrying: false }),
    ]);
    // Not a rebalance's refusal: not counted as one.
    expect(say.stats.commitsRefused).toBe(0);
  });

  it('builds no worker.sent or worker.duplicate line for a logger that drops info (pino at warn), and still counts and emits', () => {
    const log = logger(['warn', 'error']);
    const say = new Announcer(log.logger, 'group');
    const reports = say.recordReports(() => {});
    const events: number[] = [];
    reports.sent(at, envelope, result, 1);
    say.on('sent', (event) => events.push(event.latencyMs));
    reports.sent(at, envelope, result, 1);
    reports.duplicate({ ...at, envelope });
    expect(log.lines).toEqual([]);
    expect(log.asked()).toBe(3);
    expect(say.stats).toMatchObject({ sent: 2, duplicates: 1 });
    expect(events).toHaveLength(1);
    expect(events[0]).toBeGreaterThanOrEqual(1000);
  });
});

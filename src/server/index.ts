// The HTTP front the daemon starts: the listener (sockets, limits, shutdown) feeding the request pipeline
// (checks in order, routes, answers).
import type { Held } from './hold.ts';
import { Listener } from './listener.ts';
import { Pipeline, type PipelineOptions } from './pipeline.ts';

/** What the pipeline takes (the server tells it of late answers itself), plus where to listen. */
export interface ServerOptions extends Omit<PipelineOptions, 'wroteLate'> {
  port: number;
  /** Listen on these addresses; default 127.0.0.1 and ::1 (when the host has IPv6). */
  hosts?: string[];
  adopt?: Held;
}

export class PscacheServer {
  private readonly listener: Listener;

  constructor(opts: ServerOptions) {
    const pipeline = new Pipeline({ ...opts, wroteLate: (res) => this.listener.wrote(res) });
    this.listener = new Listener(opts, pipeline);
  }

  /** Called when the server cannot go on (a loopback address taken by another process); the owner stops. */
  get onFatal(): (e: Error) => void {
    return this.listener.onFatal;
  }
  set onFatal(f: (e: Error) => void) {
    this.listener.onFatal = f;
  }

  /** Resolves once 127.0.0.1 is bound; ::1 follows (see Listener.listen). */
  listen(): Promise<void> {
    return this.listener.listen();
  }

  get addresses(): string[] {
    return this.listener.addresses;
  }

  /** Settles once ::1 is bound too (or found unavailable): see Listener.listen. */
  bound(): Promise<void> {
    return this.listener.bound();
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to graceMs, then answers whatever is still
   * waiting (on a hanging upstream, say) with 503 and closes every connection.
   */
  close(graceMs: number): Promise<void> {
    return this.listener.close(graceMs);
  }
}

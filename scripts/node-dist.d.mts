// Types of scripts/node-dist.mjs, for the tests that run the layers on each pinned Node.js.
export type Arch = 'x86_64' | 'arm64';
export const CACHE_DIR: string;
export const PINS: Record<string, Partial<Record<Arch, string>>>;
export const LTS: Record<string, string>;
export const LAYER_NODE: string;
export const HOST_ARCH: Arch | undefined;
export function pin(version: string, arch: Arch): { pkg: string; integrity: string; elfMachine: number };
export function writeAtomic(file: string, data: string | Uint8Array, mode?: number): void;
export function fileFromTar(tar: Uint8Array, wanted: string): Buffer;
export function nodeBinary(version: string, arch?: Arch): Promise<string>;
export function resolveVersion(spec: string | number): string;

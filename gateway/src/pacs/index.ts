// Builds the configured PACS adapter.
import type { Store } from '../store/database.js';
import type { Pacs } from './pacs.js';
import { DicomwebPacs, type DicomwebPacsConfig } from './dicomweb.js';
import { DimsePacs, type DimsePacsConfig } from './dimse.js';
import { FolderPacs, type FolderPacsConfig } from './folder.js';

export type AnyPacsConfig = DicomwebPacsConfig | DimsePacsConfig | FolderPacsConfig;

export interface PacsDeps {
  /** required for kind 'folder' (its index lives in the box database) */
  store?: Store;
  logger?: { warn: (obj: object, msg?: string) => void; info?: (obj: object, msg?: string) => void };
}

/** Creates (and for DIMSE C-MOVE, starts the box's C-STORE SCP of) the adapter for `config`. */
export async function createPacs(config: AnyPacsConfig, deps: PacsDeps = {}): Promise<Pacs> {
  switch (config.kind) {
    case 'dicomweb':
      return new DicomwebPacs(config);
    case 'dimse': {
      const p = new DimsePacs(config, deps.logger);
      await p.start();
      return p;
    }
    case 'folder': {
      if (!deps.store) throw new Error('a folder PACS needs the box database');
      const p = new FolderPacs(deps.store, config);
      await p.echo();
      return p;
    }
    default:
      throw new Error(`unknown PACS kind ${(config as { kind: string }).kind}`);
  }
}

export { DicomwebPacs, DimsePacs, FolderPacs };
export type { DicomwebPacsConfig, DimsePacsConfig, FolderPacsConfig };
export * from './pacs.js';

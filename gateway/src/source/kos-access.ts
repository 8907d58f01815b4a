// KOS-scoped peer access (DRIM-M §4): every peer request names, in `KOS-SOPInstanceUID`, a KOS this box
// published and still has current; only what that KOS references is served. Rejected (IOCM)
// instances are never in a current KOS, so they answer 404; a withdrawn KOS answers 410.
import type { FastifyRequest } from 'fastify';
import { HttpProblem } from '../http/problem.js';
import { isValidUid } from '../dicom/uid.js';
import type { KosGrant, PeerGuard, PeerPrincipal, PeerScope } from './peer-access.js';
import type { KosRefs, PublicationRepository } from './publication/repository.js';

export const KOS_HEADER = 'kos-sopinstanceuid';

/** What a KOS's evidence references, as a grant the peer API filters by. */
export function grantOf(refs: KosRefs): KosGrant {
  return {
    covers(scope: PeerScope): boolean {
      if (scope.level === 'query' && !scope.study) return true; // answers are filtered per result
      const study = scope.study ? refs[scope.study] : undefined;
      if (!study) return false;
      if (scope.level === 'study' || (scope.level === 'query' && !scope.series)) return true;
      const series = scope.series ? study[scope.series] : undefined;
      if (!series) return false;
      if (scope.level === 'series' || (scope.level === 'query' && !scope.instance)) return true;
      return !!scope.instance && series.includes(scope.instance);
    },
    instancesOf(study: string, series?: string): Set<string> | undefined {
      const s = refs[study];
      if (!s) return new Set();
      if (series) return new Set(s[series] ?? []);
      return new Set(Object.values(s).flat());
    },
  };
}

export function kosAccessGuard(repo: PublicationRepository): PeerGuard {
  return async (req: FastifyRequest, scope: PeerScope, principal: PeerPrincipal) => {
    const raw = req.headers[KOS_HEADER];
    const uid = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (!uid) {
      throw new HttpProblem(400, 'KOS-SOPInstanceUID required', 'name the published KOS that grants this access in the KOS-SOPInstanceUID header');
    }
    if (!isValidUid(uid)) throw new HttpProblem(400, 'Bad KOS-SOPInstanceUID', 'the KOS-SOPInstanceUID header is not a DICOM UID');
    const kos = await repo.kosByUid(uid);
    if (!kos || kos.status === 'built') throw new HttpProblem(404, 'Unknown KOS', 'this box has not published the KOS named in KOS-SOPInstanceUID');
    principal.kosUid = uid;
    principal.patientId = kos.patientId;
    // A withdrawn KOS is 410 Gone, so consumers (and the clinician) learn the study was withdrawn; a
    // replaced one is 403: access goes on through the newer KOS, found in the DMP.
    if (kos.status === 'withdrawn') {
      throw new HttpProblem(410, 'Study withdrawn', 'the source withdrew this KOS (report or images withdrawn)');
    }
    if (kos.status !== 'current') {
      throw new HttpProblem(403, 'KOS no longer current', 'the KOS was replaced by a newer one; look up the current KOS in the DMP');
    }
    const grant = grantOf(kos.refs);
    if (!grant.covers(scope)) {
      throw new HttpProblem(404, 'Not covered by the KOS', 'the KOS named in KOS-SOPInstanceUID does not reference what is asked');
    }
    principal.grant = grant;
  };
}

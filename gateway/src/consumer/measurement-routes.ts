// The measurements saved with an imported exam (a DICOM SR, TID 1500, that the viewer built with
// Cornerstone's adapters and sent with the import): read back from the local PACS when the exam is
// reopened. Only an SR of the call's local patient (its IPP as Patient ID) is served: the local PACS
// may hold other patients. Registered by viewer-api.ts inside its plugin: PSC session required.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DicomJson, Pacs } from '../pacs/pacs.js';
import { HttpProblem } from '../http/problem.js';
import { readPatientModule } from '../dicom/patient-module.js';
import { isSrSopClass } from '../dicom/measurement-sr.js';
import type { CallSession } from './call-sessions.js';
import type { SessionStudy } from './dmp-search.js';

export interface MeasurementDeps {
  localPacs: Pacs;
  session(req: FastifyRequest): Promise<CallSession>;
  studyOf(req: FastifyRequest, call: CallSession, studyUid: string): SessionStudy;
}

const str = (ds: DicomJson, tag: string) => { const v = ds[tag]?.Value?.[0]; return typeof v === 'string' ? v : ''; };

export function measurementRoutes(app: FastifyInstance, d: MeasurementDeps): void {
  app.get('/api/sessions/:id/measurements/studies/:study', async (req, reply) => {
    const call = await d.session(req);
    const study = d.studyOf(req, call, (req.params as { study: string }).study);
    const series = await d.localPacs.findSeries(study.studyUid, { Modality: 'SR' }).catch(() => [] as DicomJson[]);
    const found: { series: string; sop: string; when: string }[] = [];
    for (const se of series) {
      const rows = await d.localPacs.findInstances(study.studyUid, str(se, '0020000E'), {}, { includeField: ['00080023', '00080033'] });
      for (const r of rows) {
        if (!isSrSopClass(str(r, '00080016'))) continue;
        found.push({ series: str(se, '0020000E'), sop: str(r, '00080018'), when: `${str(r, '00080023')}${str(r, '00080033')}` });
      }
    }
    // the newest first: each import of the exam saves the measurements as they were then
    found.sort((a, b) => b.when.localeCompare(a.when));
    for (const f of found) {
      for await (const part of d.localPacs.retrieve({ study: study.studyUid, series: f.series, instance: f.sop }, { transferSyntaxes: ['*'] })) {
        const file = Buffer.concat(await part.body.toArray());
        if (readPatientModule(file).patientId !== call.patient.ipp) continue;
        req.consumerAudit!.instance = f.sop;
        return reply.type('application/dicom').header('cache-control', 'private, no-store').send(file);
      }
    }
    throw new HttpProblem(404, 'Aucune mesure enregistrée', "le PACS local ne contient aucun rapport de mesures pour cet examen et ce patient");
  });
}

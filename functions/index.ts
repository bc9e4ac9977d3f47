import '../shared/framework-errors.ts';
import * as ff from '@google-cloud/functions-framework';
import { join } from './join.ts';
import { onVmReady } from './on-vm-ready.ts';
import { onWorkshopEnded } from './on-workshop-ended.ts';
import { onWorkshopStarted } from './on-workshop-started.ts';
import { sweep } from './sweep.ts';
import { workshops } from './workshops.ts';

/** Every Cloud Function, by the name it is deployed under (`--entry-point`). */
ff.http('workshops', workshops);
ff.http('join', join);
ff.cloudEvent('onWorkshopStarted', onWorkshopStarted);
ff.cloudEvent('onVmReady', onVmReady);
ff.cloudEvent('onWorkshopEnded', onWorkshopEnded);
ff.cloudEvent('sweep', sweep);

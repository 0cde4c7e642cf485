import { SUITES } from '../registry.js';
import { registerSuite } from './register.js';

registerSuite(SUITES.find((s) => s.name === 'vmm')!);

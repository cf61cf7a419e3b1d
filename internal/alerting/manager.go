package alerting

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/lookout-dev/lookout/internal/analysis"
	"github.com/lookout-dev/lookout/rules"
)

// BuiltinPrefix marks a rule file identifier that names a file embedded in
// package rules rather than one on disk, e.g. "builtin:webstore.yml".
const BuiltinPrefix = "builtin:"

// Options configure a Manager. Start from DefaultOptions and set Engine,
// Queryable and Appendable, which are required.
type Options struct {
	// Engine evaluates rule expressions.
	Engine promql.QueryEngine
	// Queryable is the storage the rules query.
	Queryable storage.Queryable
	// Appendable receives recording rule results and the ALERTS and
	// ALERTS_FOR_STATE series. Prometheus's rules manager writes through the
	// V2 appender interface; *tsdb.DB implements it.
	Appendable storage.AppendableV2
	// Analyzer finds the cause of a firing alert's spike (its evidence).
	// Nil disables evidence.
	Analyzer *analysis.Analyzer
	// RuleFiles are file paths or globs. Empty loads the built-in
	// rules/webstore.yml.
	RuleFiles []string
	// EvalInterval is the evaluation interval of groups that do not set
	// their own. Default 15s.
	EvalInterval time.Duration
	// WebhookURLs receive Alertmanager webhook JSON (version 4).
	WebhookURLs []string
	// ExternalURL is the URL Lookout is reached at, used in generator URLs
	// and the webhook's externalURL. Default http://localhost:9090.
	ExternalURL string
	// Logger receives the Manager's and the rules manager's logs. Default:
	// a logger that discards.
	Logger *slog.Logger
	// Registerer receives the rule manager's and the Manager's metrics; nil
	// registers nothing.
	Registerer prometheus.Registerer

	// MaxEvidence bounds the example trace IDs kept per alert. Default 10.
	MaxEvidence int
	// ResendDelay is how often a firing alert is notified again (and its
	// evidence refreshed). Default 1m, as in Prometheus.
	ResendDelay time.Duration
	// Webhook tunes notification delivery. Default DefaultWebhookOptions().
	Webhook WebhookOptions
}

// DefaultOptions returns the Manager's defaults; the storage and the engine
// still need setting.
func DefaultOptions() Options {
	return Options{
		EvalInterval: 15 * time.Second,
		ExternalURL:  "http://localhost:9090",
		Logger:       slog.New(slog.DiscardHandler),
		MaxEvidence:  10,
		ResendDelay:  time.Minute,
		Webhook:      DefaultWebhookOptions(),
	}
}

// WebhookOptions tune webhook delivery.
type WebhookOptions struct {
	// QueueSize bounds the messages waiting per receiver; more are dropped
	// (and counted). Default 256.
	QueueSize int
	// MaxAttempts per message. Default 5.
	MaxAttempts int
	// InitialBackoff before the first retry, doubled per attempt up to
	// MaxBackoff. Defaults 500ms and 30s.
	InitialBackoff, MaxBackoff time.Duration
	// Timeout of one attempt. Default 10s.
	Timeout time.Duration
}

// DefaultWebhookOptions returns the delivery defaults.
func DefaultWebhookOptions() WebhookOptions {
	return WebhookOptions{QueueSize: 256, MaxAttempts: 5, InitialBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second, Timeout: 10 * time.Second}
}

// Validate reports missing or malformed options.
func (o *Options) Validate() error {
	var errs []error
	if o.Engine == nil {
		errs = append(errs, errors.New("alerting: Engine is required"))
	}
	if o.Queryable == nil {
		errs = append(errs, errors.New("alerting: Queryable is required"))
	}
	if o.Appendable == nil {
		errs = append(errs, errors.New("alerting: Appendable is required"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("alerting: Logger is required (DefaultOptions has one that discards)"))
	}
	if o.EvalInterval <= 0 || o.ResendDelay <= 0 || o.MaxEvidence <= 0 {
		errs = append(errs, errors.New("alerting: EvalInterval, ResendDelay and MaxEvidence must be positive (start from DefaultOptions)"))
	}
	if w := o.Webhook; w.QueueSize <= 0 || w.MaxAttempts <= 0 || w.InitialBackoff <= 0 || w.MaxBackoff <= 0 || w.Timeout <= 0 {
		errs = append(errs, errors.New("alerting: every Webhook option must be positive (start from DefaultWebhookOptions)"))
	}
	if _, err := url.Parse(o.ExternalURL); err != nil {
		errs = append(errs, fmt.Errorf("alerting: external URL %q: %w", o.ExternalURL, err))
	}
	for _, u := range o.WebhookURLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("alerting: webhook URL %q: want an http:// or https:// URL", u))
		}
	}
	return errors.Join(errs...)
}

// Manager evaluates rule files and keeps the evidence of firing alerts.
// Its methods are safe for concurrent use.
type Manager struct {
	opts    Options
	rm      *promrules.Manager
	files   []string
	parser  parser.Parser
	metrics *metrics

	evidence *evidenceStore
	jobs     chan notification
	// staticLabels are the labels each alerting rule sets itself, by alert
	// name: they are not series labels, so evidence queries leave them out.
	staticLabels map[string]labels.Labels
	senders      []*sender

	runCtx    context.Context
	runCancel context.CancelFunc
	runOnce   sync.Once
}

// New loads and checks the rule files and returns a Manager that evaluates
// them once Run is called.
func New(opts Options) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	files, err := expandRuleFiles(opts.RuleFiles)
	if err != nil {
		return nil, err
	}
	p := parser.NewParser(parser.Options{})
	runCtx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts:      opts,
		files:     files,
		parser:    p,
		metrics:   newMetrics(opts.Registerer),
		evidence:  newEvidenceStore(),
		jobs:      make(chan notification, 64),
		runCtx:    runCtx,
		runCancel: cancel,
	}
	extURL, _ := url.Parse(opts.ExternalURL)
	m.rm = promrules.NewManager(&promrules.ManagerOptions{
		NameValidationScheme: model.UTF8Validation,
		ExternalURL:          extURL,
		QueryFunc:            promrules.EngineQueryFunc(opts.Engine, opts.Queryable),
		NotifyFunc:           m.notify,
		Context:              runCtx,
		AppendableV2:         opts.Appendable,
		Queryable:            opts.Queryable,
		Logger:               opts.Logger.With("component", "rule manager"),
		Registerer:           opts.Registerer,
		OutageTolerance:      time.Hour,
		ForGracePeriod:       10 * time.Minute,
		ResendDelay:          opts.ResendDelay,
		GroupLoader:          loader{parser: p, logger: opts.Logger},
		Parser:               p,
	})
	// Load once without starting anything so bad rule files fail New with
	// the real error (Update only logs it).
	groups, errs := m.rm.LoadGroups(opts.EvalInterval, labels.EmptyLabels(), opts.ExternalURL, promrules.DefaultEvalIterationFunc, false, files...)
	if len(errs) > 0 {
		cancel()
		return nil, fmt.Errorf("load rules: %w", errors.Join(errs...))
	}
	m.staticLabels = map[string]labels.Labels{}
	for _, g := range groups {
		for _, r := range g.Rules() {
			if ar, ok := r.(*promrules.AlertingRule); ok {
				m.staticLabels[ar.Name()] = ar.Labels()
			}
		}
	}
	for _, u := range opts.WebhookURLs {
		m.senders = append(m.senders, newSender(u, opts.Webhook, m.metrics, opts.Logger))
	}
	return m, nil
}

// RuleFiles returns the rule file identifiers the Manager loads (paths, or
// BuiltinPrefix + name for the built-in file).
func (m *Manager) RuleFiles() []string { return append([]string(nil), m.files...) }

// Run evaluates the rules until ctx is done, then stops evaluation, finishes
// in-flight work and returns. Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	started := false
	m.runOnce.Do(func() { started = true })
	if !started {
		return errors.New("alerting: Run called twice")
	}
	defer m.runCancel()
	if err := m.rm.Update(m.opts.EvalInterval, m.files, labels.EmptyLabels(), m.opts.ExternalURL, promrules.DefaultEvalIterationFunc); err != nil {
		return fmt.Errorf("start rules: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(m.rm.Run)
	var workers sync.WaitGroup
	workers.Go(func() { m.evidenceWorker(m.runCtx) })
	for _, s := range m.senders {
		workers.Go(func() { s.run(m.runCtx) })
	}
	<-ctx.Done()
	// Stop evaluation first so no notification arrives after the workers stop.
	m.rm.Stop()
	wg.Wait()
	m.runCancel()
	workers.Wait()
	for _, s := range m.senders {
		s.client.CloseIdleConnections()
	}
	return nil
}

// RulesRetriever returns the rule groups and alerting rules for Prometheus's
// web/api/v1 NewAPI (its rr parameter).
func (m *Manager) RulesRetriever(context.Context) v1.RulesRetriever { return m.rm }

// AlertingRules returns the loaded alerting rules.
func (m *Manager) AlertingRules() []*promrules.AlertingRule { return m.rm.AlertingRules() }

// Evidence returns the evidence collected for the alert with the given
// labels (alertname included), if the alert has fired.
func (m *Manager) Evidence(alertLabels labels.Labels) (Evidence, bool) {
	return m.evidence.get(alertLabels.Hash())
}

// ExtendAlert adds an alert's evidence to the Prometheus API's
// /api/v1/alerts and /api/v1/rules answers (it is their
// promapi.AlertExtension): an alert with evidence gets the annotations
// evidence_summary and evidence_trace_ids and an "evidence" member. Clients
// that know only Prometheus's shape see two more annotations.
func (m *Manager) ExtendAlert(alert *v1.Alert) (annotations map[string]string, members map[string]any) {
	ev, ok := m.Evidence(alert.Labels)
	if !ok {
		return nil, nil
	}
	return map[string]string{AnnotationSummary: ev.Summary, AnnotationTraceIDs: ev.TraceIDs()},
		map[string]any{"evidence": ev}
}

func expandRuleFiles(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return []string{BuiltinPrefix + rules.DefaultFile}, nil
	}
	var files []string
	for _, pat := range patterns {
		if strings.HasPrefix(pat, BuiltinPrefix) {
			if _, err := fs.Stat(rules.Default, strings.TrimPrefix(pat, BuiltinPrefix)); err != nil {
				return nil, fmt.Errorf("rule file %q: no such built-in file (have %s%s)", pat, BuiltinPrefix, rules.DefaultFile)
			}
			files = append(files, pat)
			continue
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("rule files %q: %w", pat, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("rule files %q: no file matches", pat)
		}
		files = append(files, matches...)
	}
	return files, nil
}

// loader reads built-in rule files from package rules and others from disk.
type loader struct {
	parser parser.Parser
	logger *slog.Logger
}

func (l loader) Load(identifier string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	name, ok := strings.CutPrefix(identifier, BuiltinPrefix)
	if !ok {
		return rulefmt.ParseFile(identifier, ignoreUnknownFields, scheme, l.parser, l.logger)
	}
	b, err := fs.ReadFile(rules.Default, name)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", identifier, err)}
	}
	rgs, errs := rulefmt.Parse(b, ignoreUnknownFields, scheme, l.parser, l.logger)
	for i := range errs {
		errs[i] = fmt.Errorf("%s: %w", identifier, errs[i])
	}
	return rgs, errs
}

func (l loader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }

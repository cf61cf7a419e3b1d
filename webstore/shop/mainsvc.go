package shop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/lookout-dev/lookout/webstore/faults"
	"github.com/lookout-dev/lookout/webstore/store"
	"github.com/lookout-dev/lookout/webstore/telemetry"
)

// mainService is the shop front: catalog, carts, checkout, orders, faults.
type mainService struct {
	shop      *Shop
	tel       *telemetry.Providers
	tracer    trace.Tracer
	inst      *instruments
	inventory *serviceClient
	payments  *serviceClient
	// attrSets caches the country × payment_method attribute sets, as
	// ready-made option slices, so that recording a measurement neither
	// builds a set nor allocates the variadic slice.
	attrSets map[[2]string][]metric.RecordOption
	// outcomeSets caches the status attribute of webstore.orders the same way.
	outcomeSets map[string][]metric.AddOption
}

func newMainService(s *Shop, tel *telemetry.Providers) (*mainService, error) {
	inst, err := newInstruments(tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	m := &mainService{
		shop:        s,
		tel:         tel,
		tracer:      tel.TracerProvider.Tracer(instrumentationName),
		inst:        inst,
		inventory:   s.newClient(s.urls[InventoryService], InventoryService, tel, 30*time.Second),
		payments:    s.newClient(s.urls[PaymentsService], PaymentsService, tel, s.cfg.PaymentTimeout+30*time.Second),
		attrSets:    map[[2]string][]metric.RecordOption{},
		outcomeSets: map[string][]metric.AddOption{},
	}
	for _, o := range []string{OutcomeCompleted, OutcomeInvalid, OutcomeOutOfStock, OutcomePaymentDeclined,
		OutcomePaymentTimeout, OutcomePaymentError, OutcomeError} {
		m.outcomeSets[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("status", o)))}
	}
	for _, c := range Countries {
		for _, pm := range PaymentMethods {
			m.attrSets[[2]string{c, pm}] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("country", c), attribute.String("payment_method", pm)))}
		}
	}
	return m, nil
}

func (m *mainService) routes() http.Handler {
	mux := http.NewServeMux()
	handle(mux, m.tel, "GET /products", m.listProducts)
	handle(mux, m.tel, "GET /products/{id}", m.getProductHandler)
	handle(mux, m.tel, "POST /carts", m.createCart)
	handle(mux, m.tel, "GET /carts/{id}", m.getCart)
	handle(mux, m.tel, "POST /carts/{id}/items", m.addCartItem)
	handle(mux, m.tel, "DELETE /carts/{id}/items/{product_id}", m.removeCartItem)
	handle(mux, m.tel, "POST /checkout", m.checkout)
	handle(mux, m.tel, "GET /orders/{id}", m.getOrder)
	mux.HandleFunc("GET /admin/faults", m.getFaults)
	mux.HandleFunc("POST /admin/faults", m.postFaults)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("/", notFound)
	return mux
}

// getProduct reads one product inside a db.query.get_product span, after
// the get_product_latency fault.
func (m *mainService) getProduct(ctx context.Context, id int64) (store.Product, error) {
	ctx, span := m.tracer.Start(ctx, "db.query.get_product", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "sqlite"),
			attribute.String("db.operation.name", "SELECT"),
			attribute.String("db.collection.name", "products"),
			attribute.String("db.query.text", "SELECT id, name, category, description, price_cents FROM products WHERE id = ?"),
			attribute.Int64("product.id", id),
		))
	defer span.End()
	if d := m.shop.faults.Load().GetProductLatency; d > 0 {
		if !m.shop.sleep(ctx, d) {
			err := fmt.Errorf("get product %d: %w", id, context.Cause(ctx))
			if ctx.Err() == nil {
				err = fmt.Errorf("get product %d: shop is stopping", id)
			}
			span.SetStatus(codes.Error, err.Error())
			return store.Product{}, err
		}
	}
	p, err := m.shop.db.GetProduct(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return p, err
}

func (m *mainService) listProducts(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 1000")
			return
		}
		limit = n
	}
	ctx, span := m.tracer.Start(r.Context(), "db.query.list_products", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "sqlite"), attribute.String("db.collection.name", "products")))
	ps, err := m.shop.db.ListProducts(ctx, r.URL.Query().Get("category"), limit)
	span.End()
	if err != nil {
		m.shop.logger.Error("list products", "err", err)
		writeError(w, http.StatusInternalServerError, "could not list products")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": ps})
}

func parseProductID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("product id must be a positive integer, got %q", s)
	}
	return id, nil
}

func (m *mainService) getProductHandler(w http.ResponseWriter, r *http.Request) {
	id, err := parseProductID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	p, err := m.getProduct(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown product %d", id))
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "could not read the product")
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

func (m *mainService) createCart(w http.ResponseWriter, r *http.Request) {
	id, err := m.shop.db.CreateCart(r.Context())
	if err != nil {
		m.shop.logger.Error("create cart", "err", err)
		writeError(w, http.StatusInternalServerError, "could not create a cart")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"cart_id": id})
}

// cartView is the body of GET /carts/{id}.
type cartView struct {
	CartID     string     `json:"cart_id"`
	Items      []cartLine `json:"items"`
	TotalCents int64      `json:"total_cents"`
}

type cartLine struct {
	ProductID      int64  `json:"product_id"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

func (m *mainService) getCart(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	lines, err := m.shop.db.CartItems(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown cart %q", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not read the cart")
		return
	}
	v := cartView{CartID: id, Items: []cartLine{}}
	for _, l := range lines {
		p, err := m.getProduct(r.Context(), l.ProductID)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "could not read the cart's products")
			return
		}
		v.Items = append(v.Items, cartLine{ProductID: p.ID, Name: p.Name, Quantity: l.Quantity, UnitPriceCents: p.PriceCents})
		v.TotalCents += p.PriceCents * l.Quantity
	}
	writeJSON(w, http.StatusOK, v)
}

func (m *mainService) addCartItem(w http.ResponseWriter, r *http.Request) {
	var l store.Line
	if err := decodeJSON(r.Body, &l); err != nil {
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	if err := checkLine(l); err != nil {
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	cartID := r.PathValue("id")
	ctx := r.Context()
	// Read the product through get_product (its span and latency fault) first.
	if _, err := m.getProduct(ctx, l.ProductID); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown product %d", l.ProductID))
		return
	} else if err != nil {
		writeError(w, http.StatusServiceUnavailable, "could not read the product")
		return
	}
	q, err := m.shop.db.AddCartItem(ctx, cartID, l.ProductID, l.Quantity, MaxLineQuantity)
	switch {
	case errors.Is(err, store.ErrQuantityLimit):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("quantity of product %d would be more than the %d allowed per product", l.ProductID, MaxLineQuantity))
		return
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown cart %q", cartID))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "could not update the cart")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cart_id": cartID, "product_id": l.ProductID, "quantity": q})
}

func (m *mainService) removeCartItem(w http.ResponseWriter, r *http.Request) {
	pid, err := parseProductID(r.PathValue("product_id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, errorMessage(err))
		return
	}
	err = m.shop.db.SetCartItem(r.Context(), r.PathValue("id"), pid, 0)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown cart %q", r.PathValue("id")))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not update the cart")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *mainService) getOrder(w http.ResponseWriter, r *http.Request) {
	o, err := m.shop.db.GetOrder(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown order %q", r.PathValue("id")))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not read the order")
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (m *mainService) getFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, m.shop.faults.Load())
}

func (m *mainService) postFaults(w http.ResponseWriter, r *http.Request) {
	p, err := faults.DecodePatch(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The current scopes were checked when set, so checking the patch's
	// (applied to no faults) is enough; Update checks the ranges.
	if err := p.Apply(faults.Faults{}).ValidateScope(PaymentMethods, Countries); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := m.shop.faults.Update(p)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	m.shop.logger.Info("faults changed", "faults", faultsLogValue(f))
	writeJSON(w, http.StatusOK, f)
}
